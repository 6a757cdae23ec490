"""Agent config, credentials and log format: bad input gets a clear error."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

from agent.config import AgentConfig, config_overrides, load_agent_config
from agent.core.logs import KeyValueFormatter
from agent.spot.connect import ConnectError, resolve_credentials
from configs import SHIPPED_DIR as CONFIG_DIR
from configs.loading import ConfigError


def test_shipped_configs_load_and_resolve_paths() -> None:
    for name in ("agent.yaml", "sim.yaml"):
        cfg = load_agent_config(CONFIG_DIR / name)
        assert cfg.rules == (CONFIG_DIR / "rules" / "default.yaml").resolve()
        assert cfg.rules.is_file()
        assert cfg.safety.max_frame_age_s < cfg.safety.watchdog_s
    assert load_agent_config(CONFIG_DIR / "agent.yaml").robot.register_estop is False


def test_unknown_key_and_bad_value_name_file_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "a.yaml"
    bad.write_text("safety: {watchdog_sec: 1.0}\n")
    with pytest.raises(ConfigError, match=r"a\.yaml: safety\.watchdog_sec: Extra inputs"):
        load_agent_config(bad)
    bad.write_text("robot: {port: 70000}\n")
    with pytest.raises(ConfigError, match=r"robot\.port: .*less than or equal to 65535"):
        load_agent_config(bad)


def test_relative_paths_are_relative_to_the_config_file(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    cfg_file = tmp_path / "sub" / "agent.yaml"
    cfg_file.write_text(
        "rules: my_rules.yaml\n"
        "robot: {ca_cert: ca.pem, auth: {payload_credentials_file: creds}}\n"
        "detector: {model: m.tflite}\n"
    )
    cfg = load_agent_config(cfg_file)
    assert cfg.rules == tmp_path / "sub" / "my_rules.yaml"
    assert cfg.robot.ca_cert == tmp_path / "sub" / "ca.pem"
    assert cfg.robot.auth.payload_credentials_file == tmp_path / "sub" / "creds"
    assert cfg.detector.model == tmp_path / "sub" / "m.tflite"


def test_overrides_are_validated() -> None:
    cfg = AgentConfig()
    out = config_overrides(cfg, **{"robot.hostname": "10.0.0.2", "robot.port": 1234, "rules": None})
    assert (out.robot.hostname, out.robot.port, out.rules) == ("10.0.0.2", 1234, cfg.rules)
    with pytest.raises(ValueError):
        config_overrides(cfg, **{"robot.port": 0})


def test_credentials_from_env_config_or_payload_file(tmp_path: Path) -> None:
    auth = AgentConfig().robot.auth
    creds = resolve_credentials(auth, {"BOSDYN_CLIENT_USERNAME": "u", "BOSDYN_CLIENT_PASSWORD": "p"})
    assert (creds.username, creds.password, creds.kind) == ("u", "p", "user")
    with pytest.raises(ConnectError, match="set BOSDYN_CLIENT_USERNAME and BOSDYN_CLIENT_PASSWORD"):
        resolve_credentials(auth, {})
    # The SDK's payload credentials format: GUID on line 1, secret on line 2.
    f = tmp_path / "payload_guid_and_secret"
    f.write_text("d2b9c2d5-4ef1-4e16-a4d8-4d2f0c1b2a3e\ns3cr3t\n")
    pauth = auth.model_copy(update={"payload_credentials_file": f})
    creds = resolve_credentials(pauth, {})
    assert (creds.payload_guid, creds.payload_secret, creds.kind) == (
        "d2b9c2d5-4ef1-4e16-a4d8-4d2f0c1b2a3e", "s3cr3t", "payload")
    f.write_text("only-a-guid\n")
    with pytest.raises(ConnectError, match="GUID on its first line and the secret on its second"):
        resolve_credentials(pauth, {})
    missing = auth.model_copy(update={"payload_credentials_file": tmp_path / "nope"})
    with pytest.raises(ConnectError, match="cannot read payload credentials file"):
        resolve_credentials(missing, {})


@pytest.mark.parametrize("field", ["watchdog_s", "max_frame_age_s", "max_goal_distance_m"])
def test_infinite_safety_bounds_are_refused(tmp_path: Path, field: str) -> None:
    # `.inf` would switch the check off (no watchdog, any frame age, any goal distance).
    bad = tmp_path / "a.yaml"
    bad.write_text(f"safety: {{{field}: .inf}}\n")
    with pytest.raises(ConfigError) as info:
        load_agent_config(bad)
    assert str(info.value) == f"{bad}: safety.{field}: Input should be a finite number (got inf)"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("safety: {watchdog_s: true}\n", "safety.watchdog_s: Input should be a valid number (got True)"),
        ("safety: {max_speed_mps: '0.5'}\n", "safety.max_speed_mps: Input should be a valid number"),
        ("robot: {port: '443'}\n", "robot.port: Input should be a valid integer (got '443')"),
        ("robot: {register_estop: 1}\n", "robot.register_estop: Input should be a valid boolean"),
        ("detector: {score_threshold: .nan}\n", "detector.score_threshold: Input should be a finite"),
        ("control: {handler_timeout_s: .inf}\n", "control.handler_timeout_s: Input should be a finite"),
        ("rules: 3\n", "rules: Input is not a valid path"),
        (
            "safety:\n  max_speed_mps: 0.3\n  max_speed_mps: 1.5\n",
            "safety.max_speed_mps: duplicate key at line 3, column 3 (first at line 2)",
        ),
    ],
)
def test_no_coercion_and_no_duplicate_keys(tmp_path: Path, text: str, expected: str) -> None:
    bad = tmp_path / "a.yaml"
    bad.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_agent_config(bad)
    assert str(info.value).startswith(f"{bad}: {expected}")


def test_integers_for_floats_and_lists_for_triples_still_load(tmp_path: Path) -> None:
    good = tmp_path / "a.yaml"
    good.write_text("safety: {max_speed_mps: 1, watchdog_s: 2}\ndetector: {input_mean: [0, 0, 0]}\n")
    cfg = load_agent_config(good)
    assert (cfg.safety.max_speed_mps, cfg.safety.watchdog_s) == (1.0, 2.0)
    assert cfg.detector.input_mean == (0.0, 0.0, 0.0)


BAD_CONFIG = "safety: {watchdog_s: .inf}\n"
BAD_RULES = (
    "limits:\n  max_speed_mps: 0.3\n  max_speed_mps: 1.5\n"
    "cues: {sign: {label: stop sign}}\n"
    "rules: [{name: sit, cue: sign, behavior: sit, priority: 10}]\n"
)


@pytest.mark.parametrize(
    ("command", "bad_file", "field"),
    [
        ("run", "config", "safety.watchdog_s"),
        ("run", "rules", "limits.max_speed_mps"),
        ("replay", "config", "safety.watchdog_s"),
        ("replay", "rules", "limits.max_speed_mps"),
        ("demo", "rules", "limits.max_speed_mps"),
    ],
)
def test_cli_exits_2_naming_the_file_and_the_field(
    tmp_path: Path, command: str, bad_file: str, field: str
) -> None:
    config, rules = tmp_path / "agent.yaml", tmp_path / "rules.yaml"
    config.write_text(BAD_CONFIG if bad_file == "config" else "robot: {hostname: 127.0.0.1}\n")
    rules.write_text(BAD_RULES)
    args = {
        "run": ["run", "--config", str(config), "--rules", str(rules), "--duration", "1"],
        "replay": ["replay", str(tmp_path), "--config", str(config), "--rules", str(rules)],
        "demo": ["demo", "--rules", str(rules), "--duration", "1"],
    }[command]
    done = subprocess.run(
        [sys.executable, "-m", "agent.cli", *args], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2, done.stderr
    bad = config if bad_file == "config" else rules
    assert f"{bad}: {field}: " in done.stderr
    assert "Traceback" not in done.stderr


def _format(journald: bool) -> str:
    record = logging.LogRecord("agent.x", logging.ERROR, __file__, 1, "lease lost", None, None)
    record.event = "lease_lost"
    record.detail = 'taken by "tablet"'
    return KeyValueFormatter(journald=journald).format(record)


def test_log_lines_are_key_value_and_journald_priority_prefixed() -> None:
    line = _format(journald=True)
    assert line.startswith("<3>level=error logger=agent.x event=lease_lost")
    assert 'msg="lease lost"' in line and 'detail="taken by \\"tablet\\""' in line
    assert "\n" not in line
    plain = _format(journald=False)
    assert plain.startswith("ts=") and "<3>" not in plain


@pytest.mark.parametrize(
    ("key", "says"),
    [("max_goto_distance_m", "now max_goal_distance_m"), ("max_command_duration_s", "remove it")],
)
def test_renamed_and_removed_safety_keys_say_what_to_do(tmp_path: Path, key: str, says: str) -> None:
    bad = tmp_path / "a.yaml"
    bad.write_text(f"safety: {{{key}: .inf}}\n")
    with pytest.raises(ConfigError) as info:
        load_agent_config(bad)
    assert str(info.value).startswith(f"{bad}: safety: ") and key in str(info.value)
    assert says in str(info.value)
