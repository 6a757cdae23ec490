"""The container's entry command, run as a process against the simulated Spot.

No Docker engine here, so the command is taken from deploy/Dockerfile (ENTRYPOINT + CMD and
ENV of the final stage) and run directly, with the container's paths mapped to this checkout:
the shipped config it names -> configs/ (or an edited copy), the mounted payload credentials -> a file written here with the
sim's payload GUID and secret, the mounted operator keys directory -> one made here with real
CurveZMQ keys (given as `--curve-keys-dir`: the profile names the container's path). Only what
differs between the robot and the sim is added as flags: `--hostname/--port/--ca` (the robot's
address and CA).

The test plays the operator the way a real deployment needs one: it configures and releases
an E-Stop on the robot (the payload profile leaves E-Stop to the operator).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from bosdyn.client.estop import EstopClient, EstopEndpoint, EstopKeepAlive
from support.deploy_support import DOCKERFILE, dockerfile_instructions, entry_command, env_of

from agent.config import load_agent_config
from agent.control.client import ControlClient
from agent.control.keys import AUTHORIZED_DIR, create_key_pair, load_client_keys
from deploy.extension import OPERATOR_KEYS_PATH, PAYLOAD_CREDENTIALS_PATH
from sim.server import DEFAULT_PAYLOAD_GUID, DEFAULT_PAYLOAD_SECRET, SimServer
from sim.testing import close_sdk, connect_sdk

PROJECT_ROOT = Path(__file__).resolve().parents[2]

INSTRUCTIONS = dockerfile_instructions(DOCKERFILE.read_text())
VENV_BIN = Path(sys.executable).parent
# Exit codes of `spot-agent run` (agent/run.py): 2 = bad configuration, 3 = cannot reach or
# authenticate.
EXIT_CONFIG = 2
EXIT_CONNECT = 3
# Where an operator reaches the payload profile's control socket from the payload itself.
PAYLOAD_CONTROL = "tcp://127.0.0.1:21500"


class AgentProcess:
    """The entry command as a child process, its stderr collected line by line."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.argv = argv
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd="/"
        )
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()

    def wait_for_line(self, pattern: str, timeout: float) -> str:
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for line in self.lines:
                    if regex.search(line):
                        return line
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self._reader.is_alive()):
                    raise AssertionError(f"no line matching {pattern!r}:\n" + self.text)
                self._changed.wait(min(left, 0.2))

    def finish(self, timeout: float) -> int:
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"still running after {timeout} s:\n" + self.text) from None
        self._reader.join(timeout=5)
        return code

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def peak_rss_mb(self) -> float:
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        kb = int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1))  # type: ignore[union-attr]
        return kb / 1024


@dataclass(frozen=True)
class OperatorKeys:
    keys_dir: Path  # what the compose file mounts at OPERATOR_KEYS_PATH
    server_key: Path  # the agent's public key, as the operator's laptop has it
    client_key: Path  # the operator's secret key


def make_operator_keys(tmp_path: Path) -> OperatorKeys:
    """The keys directory as the deploy guide has operators make it, with `spot-agent keys`."""
    keys_dir = tmp_path / "robot-keys"
    server_key, _ = create_key_pair(keys_dir, "server")
    operator_key, operator_secret = create_key_pair(tmp_path / "laptop", "operator")
    (keys_dir / AUTHORIZED_DIR).mkdir()
    shutil.copy(operator_key, keys_dir / AUTHORIZED_DIR / operator_key.name)
    return OperatorKeys(keys_dir, server_key, operator_secret)


def payload_profile_copy(tmp_path: Path, substitutions: dict[str, str]) -> Path:
    """configs/ with payload.yaml edited (each pattern must match once); returns the dir."""
    configs = tmp_path / "configs"
    configs.mkdir()
    (configs / "rules").symlink_to(PROJECT_ROOT / "configs" / "rules")
    profile = (PROJECT_ROOT / "configs" / "payload.yaml").read_text()
    for pattern, replacement in substitutions.items():
        profile, count = re.subn(pattern, replacement, profile)
        assert count == 1, f"{pattern!r} matched {count} times in configs/payload.yaml"
    (configs / "payload.yaml").write_text(profile)
    return configs


# For tests about something else: operator control on any free port, so that only the test of
# the control socket itself needs the profile's fixed ports 21500/21501.
ANY_CONTROL_PORT = {
    r"\bendpoint: tcp://0\.0\.0\.0:21500": "endpoint: tcp://0.0.0.0:0",
    r"\bevents_endpoint: tcp://0\.0\.0\.0:21501": "events_endpoint: tcp://0.0.0.0:0",
}


def container_command(
    sim: SimServer,
    credentials: Path,
    keys_dir: Path,
    configs: Path = PROJECT_ROOT / "configs",
) -> tuple[list[str], dict[str, str]]:
    """deploy/Dockerfile's command and environment, with container paths mapped to this host
    (and the shipped config it names taken from `configs`, which may hold an edited copy)."""
    argv = entry_command(INSTRUCTIONS)
    assert argv[0] == "spot-agent", argv

    def host_path(arg: str) -> str:
        if arg == PAYLOAD_CREDENTIALS_PATH:
            return str(credentials)
        assert not arg.startswith("/"), f"unmapped container path {arg}"
        return arg

    argv = [str(VENV_BIN / "spot-agent")] + [host_path(a) for a in argv[1:]]
    config_at = argv.index("--config") + 1
    argv[config_at] = str(configs / f"{argv[config_at]}.yaml")  # a shipped name in the image
    argv += ["--hostname", sim.host, "--port", str(sim.port), "--ca", str(sim.ca_path)]
    # The profile reads its keys at the container path the compose file mounts them at.
    profile = load_agent_config(Path(argv[argv.index("--config") + 1]))
    assert profile.control.curve_keys_dir == Path(OPERATOR_KEYS_PATH)
    argv += ["--curve-keys-dir", str(keys_dir)]
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("BOSDYN_CLIENT_", "SPOT_AGENT_"))
    }
    for key, value in env_of(INSTRUCTIONS).items():
        if key == "PATH":
            env["PATH"] = f"{VENV_BIN}:{os.environ['PATH']}"
        else:
            env[key] = host_path(value)
    return argv, env


def write_credentials(path: Path, guid: str, secret: str) -> Path:
    path.write_text(f"{guid}\n{secret}\n")  # the format of /opt/payload_credentials/...
    path.chmod(0o600)
    return path


# A record as agent/logs.py writes it (optionally after an sd-daemon priority), the one-line
# reason `spot-agent run` prints before a non-zero exit, and LiteRT's own start-up line.
_ONE_LINE = re.compile(
    r"^(<\d>)?(ts=\S+ )?level=[a-z]+ logger=\S+ |^spot-agent: \S|"
    r"^INFO: Created TensorFlow Lite XNNPACK delegate for CPU\.$"
)


def assert_one_record_per_line(text: str) -> None:
    """journald keeps a line per entry: every line must be a whole record (no tracebacks)."""
    strays = [line for line in text.splitlines() if not _ONE_LINE.search(line)]
    assert not strays, "lines that are not one whole record:\n" + "\n".join(strays[:20])


@pytest.fixture
def operator_estop(sim: SimServer) -> Iterator[None]:
    """An operator's E-Stop, configured and released, as the agent needs on a real robot."""
    operator = connect_sdk(sim, "operator-tablet")
    endpoint = EstopEndpoint(
        operator.ensure_client(EstopClient.default_service_name), "operator", 9.0
    )
    endpoint.force_simple_setup()
    keepalive = EstopKeepAlive(endpoint)
    try:
        yield
    finally:
        keepalive.shutdown()
        close_sdk(operator)


@pytest.mark.slow
def test_entry_command_authenticates_as_the_payload_runs_and_stops_on_the_stop_signal(
    sim, operator_estop, tmp_path
):
    creds = write_credentials(
        tmp_path / "payload_guid_and_secret", DEFAULT_PAYLOAD_GUID, DEFAULT_PAYLOAD_SECRET
    )
    keys = make_operator_keys(tmp_path)
    argv, env = container_command(sim, creds, keys.keys_dir)
    agent = AgentProcess(argv, env)
    try:
        connected = agent.wait_for_line(r"event=connected\b", timeout=60)
        assert "auth=payload" in connected and f"port={sim.port}" in connected
        agent.wait_for_line(r"event=pipeline_started\b", timeout=60)
        time.sleep(2.0)  # let it run: frames in, detections out
        assert agent.proc.poll() is None, agent.text
        # An operator with an authorized key reaches the profile's control port over CURVE.
        client_keys = load_client_keys(keys.server_key, keys.client_key)
        with ControlClient(PAYLOAD_CONTROL, keys=client_keys, timeout_s=5.0) as operator:
            status = operator.call("status").value
        assert set(status["cameras"]) == {"frontleft_fisheye_image", "frontright_fisheye_image"}
        rss = agent.peak_rss_mb()
        print(f"agent peak RSS after start-up: {rss:.0f} MB")  # compare with compose's memory limit
        # docker stop sends compose's stop_signal (SIGINT) to the agent.
        agent.proc.send_signal(signal.SIGINT)
        code = agent.finish(timeout=30)
    finally:
        if agent.proc.poll() is None:
            agent.proc.kill()
    assert code == 0, agent.text
    assert re.search(r"event=lease_returned\b", agent.text), agent.text
    assert_one_record_per_line(agent.text)


def test_entry_command_with_a_wrong_secret_exits_non_zero_saying_why(sim, tmp_path):
    creds = write_credentials(
        tmp_path / "payload_guid_and_secret", DEFAULT_PAYLOAD_GUID, "not-the-secret"
    )
    configs = payload_profile_copy(tmp_path, ANY_CONTROL_PORT)
    argv, env = container_command(sim, creds, make_operator_keys(tmp_path).keys_dir, configs)
    agent = AgentProcess(argv, env)
    code = agent.finish(timeout=60)
    assert code == EXIT_CONNECT, agent.text
    assert f"robot at {sim.host}:{sim.port} does not know this payload GUID/secret" in agent.text
    # Wrong credentials cannot heal: no retry loop before saying so.
    assert "event=connect_failed" not in agent.text
    assert_one_record_per_line(agent.text)


def test_entry_command_without_the_credentials_mount_exits_non_zero_saying_why(sim, tmp_path):
    configs = payload_profile_copy(tmp_path, ANY_CONTROL_PORT)
    keys_dir = make_operator_keys(tmp_path).keys_dir
    argv, env = container_command(sim, tmp_path / "not-mounted", keys_dir, configs)
    agent = AgentProcess(argv, env)
    assert agent.finish(timeout=60) == EXIT_CONNECT, agent.text
    assert f"cannot read payload credentials file {tmp_path / 'not-mounted'}" in agent.text
    assert_one_record_per_line(agent.text)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_entry_command_gives_up_on_an_unreachable_robot_after_its_retries(sim, tmp_path):
    """The payload profile with a shorter retry budget (its own is 6 tries over ~31 s)."""
    configs = payload_profile_copy(
        tmp_path,
        {r"\bconnect_retries: \d+": "connect_retries: 3",
         r"\bconnect_backoff_s: [\d.]+": "connect_backoff_s: 0.2",
         **ANY_CONTROL_PORT},
    )  # fmt: skip
    creds = write_credentials(
        tmp_path / "payload_guid_and_secret", DEFAULT_PAYLOAD_GUID, DEFAULT_PAYLOAD_SECRET
    )
    argv, env = container_command(sim, creds, make_operator_keys(tmp_path).keys_dir, configs)
    port = _closed_port()
    argv[argv.index("--port") + 1] = str(port)
    agent = AgentProcess(argv, env)
    code = agent.finish(timeout=90)
    assert code == EXIT_CONNECT, agent.text
    reason = agent.wait_for_line(r"^spot-agent: ", timeout=1)
    assert f"the robot at {sim.host}:{port}" in reason and "gave up after 3 attempts" in reason
    attempts = re.findall(r"event=connect_failed\b.*\battempt=(\d)", agent.text)
    assert attempts == ["1", "2", "3"], agent.text
    assert_one_record_per_line(agent.text)


@pytest.mark.parametrize("created", [True, False], ids=["empty", "absent"])
def test_entry_command_without_the_operator_keys_exits_2_saying_how_to_make_them(
    sim, tmp_path, created
):
    """No keys in the mount (Docker creates a missing host directory, empty): the agent says
    which file is missing and how to make it, before touching the robot or any port."""
    creds = write_credentials(
        tmp_path / "payload_guid_and_secret", DEFAULT_PAYLOAD_GUID, DEFAULT_PAYLOAD_SECRET
    )
    keys_dir = tmp_path / "keys"
    if created:
        keys_dir.mkdir()
    argv, env = container_command(sim, creds, keys_dir)
    agent = AgentProcess(argv, env)
    assert agent.finish(timeout=60) == EXIT_CONFIG, agent.text
    reason = agent.wait_for_line(r"^spot-agent: ", timeout=1)
    assert f"{keys_dir / 'server.key_secret'} does not exist" in reason, reason
    assert f"spot-agent keys --dir {keys_dir} --name server" in reason, reason
    assert "event=connected" not in agent.text
    assert_one_record_per_line(agent.text)
