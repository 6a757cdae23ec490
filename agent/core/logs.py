"""Structured, journald-friendly log lines: `level=info event=lease_lost msg="..." key=value`.

One line per record, no colours. Under systemd (`JOURNAL_STREAM` set) each line starts with a
`<N>` syslog priority prefix, which journald turns into the entry's priority, and the
timestamp is left out (journald adds its own); elsewhere lines start with an ISO timestamp.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import Any

# Attributes every LogRecord has; anything else came from `extra=` and is a structured field.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}

_HANDLER_NAME = "spot-agent-kv"

_SYSLOG_PRIORITY = {
    logging.CRITICAL: 2,
    logging.ERROR: 3,
    logging.WARNING: 4,
    logging.INFO: 6,
    logging.DEBUG: 7,
}


# Control characters (C0, DEL, C1) never reach a log line raw: a NUL, a carriage return or an
# escape sequence from a client-chosen string would corrupt journald entries or the terminal.
_ESCAPES = {i: f"\\x{i:02x}" for i in [*range(0x20), *range(0x7F, 0xA0)]}
_ESCAPES.update({ord("\\"): "\\\\", ord('"'): '\\"', ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t"})


def _quote(value: Any) -> str:
    text = str(value)
    escaped = text.translate(_ESCAPES)
    if text == "" or escaped != text or any(c in text for c in " ="):
        return f'"{escaped}"'
    return text


class KeyValueFormatter(logging.Formatter):
    def __init__(self, journald: bool) -> None:
        super().__init__()
        self.journald = journald

    def format(self, record: logging.LogRecord) -> str:
        fields: list[str] = []
        if self.journald:
            prefix = f"<{_SYSLOG_PRIORITY.get(record.levelno, 6)}>"
        else:
            prefix = ""
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(record.created))
            fields.append(f"ts={stamp}.{int(record.msecs):03d}")
        fields.append(f"level={record.levelname.lower()}")
        fields.append(f"logger={record.name}")
        event = getattr(record, "event", None)
        if event is not None:
            fields.append(f"event={_quote(event)}")
        fields.append(f"msg={_quote(record.getMessage())}")
        for key, value in record.__dict__.items():
            if key in _STANDARD or key == "event" or key.startswith("_"):
                continue
            fields.append(f"{key}={_quote(value)}")
        if record.exc_info:
            fields.append(f"exc={_quote(self.formatException(record.exc_info))}")
        return prefix + " ".join(fields)


def setup_logging(level: str | int = "INFO", stream: Any = None) -> None:
    """Route all logging (ours and the SDK's) through one key=value handler on stderr."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(KeyValueFormatter(journald=bool(os.environ.get("JOURNAL_STREAM"))))
    handler.set_name(_HANDLER_NAME)
    root = logging.getLogger()
    for old in list(root.handlers):
        # Replace our own handler from an earlier call, and Python's default stderr handler
        # (logging.basicConfig); leave anything else (e.g. a test harness's capture) alone.
        if old.get_name() == _HANDLER_NAME or type(old) is logging.StreamHandler:
            root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
