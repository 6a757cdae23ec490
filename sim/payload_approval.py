"""Approving payloads in a running `spot-agent sim --payload-approval manual`, from another shell.

A robot's admin authorizes a new payload in the admin console; the sim's console is a folder.
`spot-agent sim approve-payload GUID --port N` drops a request file in the folder of the sim on
port N (`~/.cache/spot-cue-agent/sim-<port>/approvals/`); the running sim picks it up within half
a second, approves the payload and writes the answer next to the request, which the command waits
for and prints. No extra port or protocol, and it works whatever the sim's stdin is attached to.
In-process (tests, your own tools), call `SimServer.approve_payload(guid)`.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable
from pathlib import Path

REQUEST_SUFFIX = ".request"
ANSWER_SUFFIX = ".answer"
APPROVED = "approved"
UNKNOWN = "unknown"


def approval_dir(port: int, base: Path | None = None) -> Path:
    """The folder a sim on `port` watches (base: the user's cache)."""
    if base is None:
        cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        base = Path(cache) / "spot-cue-agent"
    return base / f"sim-{port}" / "approvals"


class ApprovalInbox:
    """The sim's side: answers the requests found in its folder."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.iterdir():  # left by an earlier sim on this port
            stale.unlink(missing_ok=True)

    def poll(self, approve: Callable[[str], bool]) -> int:
        """Answer every waiting request with `approve(guid)`; returns how many were answered."""
        answered = 0
        for request in sorted(self.directory.glob(f"*{REQUEST_SUFFIX}")):
            try:
                guid = request.read_text().strip()
            except OSError:
                continue  # being written: next poll
            answer = APPROVED if guid and approve(guid) else UNKNOWN
            tmp = request.with_suffix(".tmp")
            tmp.write_text(answer)
            tmp.replace(request.with_suffix(ANSWER_SUFFIX))
            request.unlink(missing_ok=True)
            answered += 1
        return answered


def request_approval(directory: Path, guid: str, timeout_s: float = 5.0) -> str:
    """The command's side: ask the sim watching `directory` to approve `guid`.

    Returns APPROVED or UNKNOWN (no payload with that GUID is registered); raises TimeoutError when
    no sim answers (none running on that port, or not in manual mode).
    """
    if not directory.is_dir():
        raise TimeoutError(f"{directory} does not exist")
    name = secrets.token_hex(8)
    tmp = directory / f"{name}.tmp"
    tmp.write_text(guid)
    request = tmp.replace(directory / f"{name}{REQUEST_SUFFIX}")
    answer = directory / f"{name}{ANSWER_SUFFIX}"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if answer.exists():
            result = answer.read_text().strip()
            answer.unlink(missing_ok=True)
            return result
        time.sleep(0.05)
    request.unlink(missing_ok=True)
    raise TimeoutError(f"no answer in {directory} within {timeout_s:.0f} s")
