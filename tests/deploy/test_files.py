"""deploy/ (Dockerfile, compose file, manifest, pins) and configs/payload.yaml, checked statically.

No Docker engine runs here: these tests read the files the way Docker, docker-compose and
the CORE I/O extension loader read them and check that they agree with each other and with
the project (the entry command's config exists, the credentials path is the mounted one, the
image tag is the version, the pins satisfy pyproject.toml, the wheel carries the model).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from support.deploy_support import (
    DEPLOY,
    DOCKERFILE,
    copy_sources,
    docker_save_bytes,
    dockerfile_instructions,
    entry_command,
    env_of,
    final_stage,
)

import configs
from agent.config import load_agent_config
from agent.control.endpoints import parse_tcp
from deploy.extension import (
    OPERATOR_KEYS_PATH,
    PAYLOAD_CREDENTIALS_PATH,
    PAYLOAD_PORT_RANGE,
    PAYLOAD_RESERVED_PORTS,
    compose_problems,
    manifest_problems,
)
from deploy.network import IMAGE_DEFAULT_CONFIG, listening_ports

PROJECT_ROOT = Path(__file__).resolve().parents[2]

tomllib = pytest.importorskip("tomllib", reason="reading pyproject.toml needs Python 3.11+")
PYPROJECT = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())
MANIFEST = json.loads((DEPLOY / "manifest.json").read_text())
COMPOSE = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
INSTRUCTIONS = dockerfile_instructions(DOCKERFILE.read_text())
PAYLOAD_CONFIG = PROJECT_ROOT / "configs" / "payload.yaml"
# The ports the agent listens on with the payload profile: what the compose file must publish.
PAYLOAD_PORTS = listening_ports(load_agent_config(PAYLOAD_CONFIG))


CREDS_MOUNT = f"{PAYLOAD_CREDENTIALS_PATH}:{PAYLOAD_CREDENTIALS_PATH}:ro"
KEYS = OPERATOR_KEYS_PATH
KEYS_MOUNT = f"/data/spot-cue-agent/keys:{KEYS}:ro"


def _service() -> dict:
    (service,) = COMPOSE["services"].values()
    return service


def _flag(argv: list[str], flag: str) -> str:
    assert argv.count(flag) == 1, f"{flag} once in {argv}"
    return argv[argv.index(flag) + 1]


# ------------------------------------------------------------------------------ manifest.json
def test_manifest_has_the_fields_core_io_reads():
    assert manifest_problems(MANIFEST) == []
    assert re.fullmatch(r"[A-Za-z0-9_-]+", MANIFEST["extension_name"])
    assert re.fullmatch(r"\d+\.\d+\.\d+", MANIFEST["version"])
    assert MANIFEST["installation_target"] == "spot"
    assert MANIFEST["images"] == [f"{MANIFEST['extension_name']}.tar.gz"]
    assert (DEPLOY / MANIFEST["icon"]).is_file()
    assert (DEPLOY / MANIFEST["icon"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_manifest_version_is_the_project_version():
    assert MANIFEST["version"] == PYPROJECT["project"]["version"]


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        ({"version": "0.1"}, "version must be X.Y.Z"),
        ({"version": "v0.1.0"}, "version must be X.Y.Z"),
        ({"extension_name": "spot cue agent"}, "extension_name"),
        ({"extension_name": "spot.cue.agent"}, "letters, digits, '-' and '_' only"),
        ({"extension_name": "spot-cue-agent\n"}, "letters, digits, '-' and '_' only"),
        ({"extension_name": ""}, "letters, digits, '-' and '_' only"),
        # Boston Dynamics reserves these strings ("Running Custom Applications with Spot").
        ({"extension_name": "spot-coreio-agent"}, "must not contain 'coreio'"),
        ({"extension_name": "CoreIO_agent"}, "must not contain 'coreio'"),
        ({"extension_name": "my_mission_control"}, "must not contain 'mission_control'"),
        ({"extension_name": "a" * 256}, "at most 255"),
        ({"udev_rules": "99-camera.rule"}, "udev_rules must be a plain file name ending .rules"),
        ({"udev_rules": "rules.d/99-camera.rules"}, "udev_rules must be a plain file name"),
        ({"files_to_save": ["/etc/passwd"]}, "files_to_save entry '/etc/passwd' must be relative"),
        ({"directories_to_save": "state"}, "directories_to_save must be a list"),
        ({"images": []}, "images must be a non-empty list"),
        ({"images": ["../escape.tar.gz"]}, "plain file name"),
        ({"images": ["image.zip"]}, "ending .tar, .tar.gz or .tgz"),
        ({"installation_target": "scout"}, "installation_target"),
        ({"date": "yesterday"}, "ISO 8601"),
    ],
)
def test_manifest_problems_name_the_field(change, complaint):
    problems = manifest_problems({**MANIFEST, **change})
    assert len(problems) == 1 and complaint in problems[0], problems


@pytest.mark.parametrize(
    "change",
    [
        {"extension_name": "core-io_agent"},  # not the reserved string
        {"extension_name": "mission-control"},  # '-' is not '_'
        {"extension_name": "a" * 255},
        {"udev_rules": "99-camera.rules"},
        {"files_to_save": ["state/last.json"], "directories_to_save": ["maps"]},
    ],
)
def test_manifest_accepts_what_the_docs_allow(change):
    assert manifest_problems({**MANIFEST, **change}) == []


# ------------------------------------------------------------------------- docker-compose.yml
def test_compose_follows_spot_extension_conventions():
    assert compose_problems(COMPOSE, PAYLOAD_PORTS) == []
    service = _service()
    assert service["restart"] == "unless-stopped"
    assert service["logging"]["driver"] == "journald"
    # Bridge networking with the operator ports published as themselves, as the SDK's
    # extension template recommends.
    assert service["network_mode"] == "bridge"
    assert service["ports"] == ["21500:21500", "21501:21501"]
    # The agent stops the robot on SIGINT; tini (init) hands the signal on to it.
    assert service["init"] is True and service["stop_signal"] == "SIGINT"
    assert f"{PAYLOAD_CREDENTIALS_PATH}:{PAYLOAD_CREDENTIALS_PATH}:ro" in service["volumes"]
    assert f"/data/spot-cue-agent/keys:{OPERATOR_KEYS_PATH}:ro" in service["volumes"]


def test_compose_mounts_the_operator_keys_the_payload_profile_reads():
    keys_dir = load_agent_config(PAYLOAD_CONFIG).control.curve_keys_dir
    assert keys_dir == Path(OPERATOR_KEYS_PATH)
    mounted = [v for v in _service()["volumes"] if v.split(":")[1] == str(keys_dir)]
    assert len(mounted) == 1 and mounted[0].endswith(":ro"), mounted


def test_compose_runs_the_image_the_manifest_ships():
    assert _service()["image"] == f"{MANIFEST['extension_name']}:{MANIFEST['version']}"


def test_compose_is_a_format_core_io_docker_compose_reads():
    # docker-compose v1 (as on CORE I/O) needs 3.7+ for `init`; everything used is in 3.8.
    assert COMPOSE["version"] == "3.8"


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        ({"restart": "no"}, "restart must be one of"),
        ({"logging": {"driver": "json-file"}}, "logging.driver must be journald"),
        ({"network_mode": "none"}, "network_mode must be bridge (with the operator ports"),
        ({"network_mode": "host"}, "ports has no effect with network_mode host (remove ['21500"),
        ({"ports": ["21500:21500"]}, "control.events_endpoint listens on 21501 but ports does "
                                     "not publish it: add '21501:21501'"),
        ({"ports": ["21500:21500", "21501:21501", "21502:21502"]},
         "publishes 21502, which the agent config does not listen on"),
        ({"ports": ["21600:21500", "21501:21501"]}, "publish it as itself ('21500:21500')"),
        ({"ports": ["21500", "21501:21501"]}, "container port 21500 as a random port"),
        ({"ports": ["21500:21500/udp", "21501:21501"]}, "is udp; the agent's operator ports are TCP"),
        ({"ports": ["21500:21500", "21501:21501", "nonsense"]}, "'nonsense' is not a port mapping"),
        ({"volumes": [KEYS_MOUNT]}, f"must mount {PAYLOAD_CREDENTIALS_PATH}"),
        ({"volumes": [f"{PAYLOAD_CREDENTIALS_PATH}:/creds", KEYS_MOUNT]}, "read-only"),
        ({"volumes": [CREDS_MOUNT]}, f"must mount the operator keys directory at {KEYS}"),
        ({"volumes": [CREDS_MOUNT, KEYS_MOUNT.removesuffix(":ro")]}, "operator keys read-only"),
        ({"volumes": [CREDS_MOUNT, f"./keys:{KEYS}:ro"]}, "outside /data/.extensions/"),
        (
            {"volumes": [CREDS_MOUNT, f"/data/.extensions/spot-cue-agent/keys:{KEYS}:ro"]},
            "deletes its folder",
        ),
        ({"image": "spot-cue-agent"}, "image: name:tag"),
    ],
)  # fmt: skip
def test_compose_problems_name_what_is_wrong(change, complaint):
    broken = {"version": "3.8", "services": {"agent": {**_service(), **change}}}
    problems = compose_problems(broken, PAYLOAD_PORTS)
    assert len(problems) == 1 and complaint in problems[0], problems


@pytest.mark.parametrize(
    "change",
    [
        {"network_mode": "host", "ports": None},  # host networking, nothing to publish
        {"network_mode": None},  # Compose's own network, which is a bridge
        {"ports": ["21500-21501:21500-21501"]},
        {"ports": [{"target": 21500, "published": 21500}, "0.0.0.0:21501:21501/tcp"]},
    ],
)
def test_compose_accepts_bridge_and_host_networking(change):
    service = {k: v for k, v in {**_service(), **change}.items() if v is not None}
    assert compose_problems({"services": {"agent": service}}, PAYLOAD_PORTS) == []


def test_compose_refuses_a_port_core_io_firewall_drops():
    service = {**_service(), "ports": ["21500:21500", "21501:21501", "8080:8080"]}
    assert compose_problems({"services": {"agent": service}}, PAYLOAD_PORTS) == [
        "service 'agent': ports '8080:8080' publishes 8080, outside 21000-22000, where CORE "
        "I/O's firewall drops incoming connections",
        "service 'agent': ports '8080:8080' publishes 8080, which the agent config does not "
        "listen on (it listens on [21500, 21501])",
    ]


def _ports_with(tmp_path: Path, **control: object) -> list:
    """The listening ports of configs/payload.yaml with `control:` settings changed."""
    data = yaml.safe_load(PAYLOAD_CONFIG.read_text())
    for dotted, value in control.items():
        node = data["control"]
        *parents, leaf = dotted.split("__")
        for key in parents:
            node = node[key]
        node[leaf] = value
    path = tmp_path / "payload.yaml"
    path.write_text(yaml.safe_dump(data))
    return listening_ports(load_agent_config(path))


def test_live_view_must_be_published_once_enabled(tmp_path):
    ports = _ports_with(tmp_path, live_view__enabled=True)
    assert [p.port for p in ports] == [21500, 21501, 21502]
    problems = compose_problems(COMPOSE, ports)
    assert problems == [
        "service 'spot-cue-agent': the agent config's control.live_view.port listens on 21502 "
        "but ports does not publish it: add '21502:21502'"
    ]
    published = {**_service(), "ports": [*_service()["ports"], "21502:21502"]}
    assert compose_problems({"services": {"agent": published}}, ports) == []


def test_bridge_mode_refuses_a_config_bound_to_loopback(tmp_path):
    ports = _ports_with(tmp_path, endpoint="tcp://127.0.0.1:21500")
    assert compose_problems(COMPOSE, ports) == [
        "service 'spot-cue-agent': the agent config's control.endpoint binds 127.0.0.1, which a "
        "published port cannot reach in bridge mode: bind 0.0.0.0"
    ]
    host = {**_service(), "network_mode": "host"}
    host.pop("ports")
    assert compose_problems({"services": {"agent": host}}, ports) == []  # reachable on the payload


@pytest.mark.parametrize(
    ("endpoints", "complaint"),
    [
        (("tcp://0.0.0.0:20000", "tcp://0.0.0.0:21501"), "endpoint is port 20000, outside 21000"),
        # No events_endpoint: the control port + 1.
        (("tcp://0.0.0.0:21442", None), "events_endpoint is port 21443, 21443, which CORE I/O"),
    ],
)
def test_config_ports_must_pass_core_io_firewall_in_host_mode(tmp_path, endpoints, complaint):
    ports = _ports_with(tmp_path, endpoint=endpoints[0], events_endpoint=endpoints[1])
    host = {**_service(), "network_mode": "host"}
    host.pop("ports")
    problems = compose_problems({"services": {"agent": host}}, ports)
    assert len(problems) == 1 and complaint in problems[0], problems


def test_no_ports_to_publish_when_control_is_off(tmp_path):
    ports = _ports_with(tmp_path, enabled=False)
    assert ports == []
    problems = compose_problems(COMPOSE, ports)
    assert [p for p in problems if "does not listen on" in p] == [
        "service 'spot-cue-agent': ports '21500:21500' publishes 21500, which the agent config "
        "does not listen on (it listens on nothing)",
        "service 'spot-cue-agent': ports '21501:21501' publishes 21501, which the agent config "
        "does not listen on (it listens on nothing)",
    ]


def test_compose_with_two_services_is_refused():
    two = {"services": {"a": _service(), "b": _service()}}
    assert compose_problems(two, PAYLOAD_PORTS) == [
        "docker-compose.yml must define exactly one service (the agent)"
    ]


# --------------------------------------------------------------------------------- Dockerfile
def test_every_stage_starts_from_a_multi_arch_python_image():
    froms = [i.args for i in INSTRUCTIONS if i.keyword == "FROM"]
    assert froms, "no FROM"
    for args in froms:
        image = args.split()[0]
        # The official python images are published for linux/arm64 and linux/amd64; a
        # --platform pin on FROM would make the build single-arch.
        assert re.fullmatch(r"python:3\.1[1-3]-slim(-bookworm)?", image), image
        assert "--platform" not in args


def test_image_runs_spot_agent_with_the_payload_config_and_mounted_credentials():
    argv = entry_command(INSTRUCTIONS)
    assert argv[:2] == ["spot-agent", "run"]
    config = _flag(argv, "--config")
    assert config == "payload"  # the shipped configs/payload.yaml, installed with the package
    assert config == IMAGE_DEFAULT_CONFIG  # the config whose ports `spot-agent package` checks
    # The credentials file the agent reads is the one the compose file mounts.
    creds = _flag(argv, "--payload-credentials-file")
    mounted = [
        v.split(":")[1] for v in _service()["volumes"] if v.startswith(PAYLOAD_CREDENTIALS_PATH)
    ]
    assert mounted == [creds]
    # The config the image runs ships in the package the Dockerfile installs.
    copies = {dest: srcs for srcs, dest in copy_sources(INSTRUCTIONS)}
    assert copies["configs"] == ["configs"]
    assert configs.find(config) == (PROJECT_ROOT / "configs" / "payload.yaml").resolve()


def test_final_stage_is_unprivileged_and_logs_promptly():
    stage = final_stage(INSTRUCTIONS)
    users = [i.args for i in stage if i.keyword == "USER"]
    assert users and users[-1] not in ("root", "0", "0:0")
    env = env_of(INSTRUCTIONS)
    assert env["PYTHONUNBUFFERED"] == "1"  # each log line reaches journald when written
    assert env["PATH"].startswith("/opt/venv/bin:")


def test_everything_the_dockerfile_copies_exists_and_is_not_ignored():
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text().split()
    allowed = {p.lstrip("!").rstrip("/") for p in ignore if p.startswith("!")}
    assert ignore[ignore.index("*") :][0] == "*", "the ignore file lists what to send, after '*'"
    for sources, _dest in copy_sources(INSTRUCTIONS):
        for source in sources:
            assert (PROJECT_ROOT / source).exists(), f"COPY {source}: missing from the repo"
            sent = {source.rstrip("/"), *(str(parent) for parent in Path(source).parents)}
            assert sent & allowed, (
                f"COPY {source}: excluded by Dockerfile.dockerignore"
            )


def test_image_installs_the_project_from_its_packages_including_the_model():
    copied = {s for sources, _ in copy_sources(INSTRUCTIONS) for s in sources}
    packages = set(PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"])
    assert {p.rstrip("*") for p in packages} <= copied
    runs = [i.args for i in INSTRUCTIONS if i.keyword == "RUN"]
    assert any(r.startswith("pip install --no-deps .") for r in runs), runs
    assert "models/*" in PYPROJECT["tool"]["setuptools"]["package-data"]["perception"]


# ----------------------------------------------------------------------------- constraints.txt
def _pins() -> dict[str, str]:
    pins = {}
    for line in (DEPLOY / "constraints.txt").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"constraints.txt: {line!r} is not an exact pin"
            pins[name.lower().replace("_", "-")] = version
    return pins


def test_image_pins_satisfy_every_runtime_dependency():
    pins = _pins()
    for spec in PYPROJECT["project"]["dependencies"]:
        req = Requirement(spec)
        name = req.name.lower().replace("_", "-")
        assert name in pins, f"{name} is not pinned in deploy/constraints.txt: run deploy/lock.py"
        assert req.specifier.contains(pins[name]), (
            f"deploy/constraints.txt pins {name}=={pins[name]}, outside {req.specifier}: "
            "run deploy/lock.py"
        )


# ------------------------------------------------------------------------------- build script
def test_build_script_builds_for_the_platform_and_packages_the_saved_image(tmp_path):
    """deploy/build_image.sh with a stand-in `docker` that writes a real docker save archive."""
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    calls = tmp_path / "docker-calls.txt"
    archive = tmp_path / "archive.tar"
    archive.write_bytes(docker_save_bytes(["spot-cue-agent:9.8.7"], arch="arm64"))
    docker = fake_bin / "docker"
    docker.write_text(
        "#!/usr/bin/env bash\n"
        f'echo "$@" >> {calls}\n'
        'for a in "$@"; do\n'
        '  case "$a" in type=docker,dest=*) dest="${a#type=docker,dest=}";; esac\n'
        "done\n"
        f'cp {archive} "$dest"\n'
    )
    docker.chmod(0o755)
    # `spot-agent` from this interpreter's environment, as the script calls it.
    env = {**os.environ, "PATH": f"{fake_bin}:{Path(sys.executable).parent}:{os.environ['PATH']}"}
    out = tmp_path / "ext.spx"
    work = tmp_path / "checkout"
    shutil.copytree(DEPLOY, work / "deploy")
    result = subprocess.run(
        ["bash", str(work / "deploy" / "build_image.sh"), "--version", "9.8.7", "--out", str(out)],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    (call,) = calls.read_text().splitlines()
    assert call.startswith(
        "buildx build --platform linux/arm64 -f deploy/Dockerfile -t spot-cue-agent:9.8.7 "
    )
    assert (work / "build" / "spot-cue-agent-9.8.7-arm64.tar").is_file()
    assert "built:" in result.stdout and "extension spot-cue-agent 9.8.7" in result.stdout
    assert out.is_file()


# ------------------------------------------------------------------------- configs/payload.yaml
def test_payload_profile_validates_and_targets_the_robot_from_the_payload_network():
    config = load_agent_config(PAYLOAD_CONFIG)
    assert config.robot.hostname == "192.168.50.3"
    assert config.robot.port == 443
    assert config.robot.ca_cert is None  # the SDK's bundled robot CA
    assert config.robot.auth.payload_credentials_file == Path(PAYLOAD_CREDENTIALS_PATH)
    assert config.robot.register_estop is False  # a real robot: the operator's E-Stop
    assert config.robot.connect_retries >= 3
    assert config.rules.is_file()


def _port_fields(data: object, path: str = "") -> dict[str, int]:
    """Every `*port*` integer and the port of every tcp:// `*endpoint*` in a config dump."""
    found: dict[str, int] = {}
    if isinstance(data, dict):
        for key, value in data.items():
            here = f"{path}.{key}" if path else str(key)
            if "port" in str(key) and isinstance(value, int) and not isinstance(value, bool):
                found[here] = value
            if "endpoint" in str(key) and isinstance(value, str) and value.startswith("tcp://"):
                found[here] = parse_tcp(value).port
            found.update(_port_fields(value, here))
    return found


def _listening_ports() -> dict[str, int]:
    dump = load_agent_config(PAYLOAD_CONFIG).model_dump()
    ports = _port_fields(dump)
    ports.pop("robot.port")  # the robot's port, which the agent connects to
    return ports


def test_payload_profile_opens_only_ports_core_io_lets_in():
    for where, port in _listening_ports().items():
        assert port in PAYLOAD_PORT_RANGE and port not in PAYLOAD_RESERVED_PORTS, (where, port)


def test_payload_profile_sets_the_operator_port():
    assert 21500 in _listening_ports().values()


def test_payload_profile_serves_operators_on_the_network_with_keys_only():
    control = load_agent_config(PAYLOAD_CONFIG).control
    assert control.enabled
    assert control.endpoint == "tcp://0.0.0.0:21500"
    assert control.events_endpoint == "tcp://0.0.0.0:21501"
    assert control.curve_keys_dir == Path(OPERATOR_KEYS_PATH)  # mounted, never in the image
    # The live view has no authentication: off unless an operator turns it on, on 21502 then.
    assert control.live_view.enabled is False and control.live_view.port == 21502


def test_secret_keys_never_go_into_the_build_context():
    lines = [
        line.strip()
        for line in (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    # The last matching line wins: the exclusion must come after every `!` re-inclusion.
    last_include = max(i for i, line in enumerate(lines) if line.startswith("!"))
    assert "**/*.key_secret" in lines[last_include + 1 :], lines
