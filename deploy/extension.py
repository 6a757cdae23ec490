"""What a Spot Extension for CORE I/O is made of: its manifest and its compose file, checked.

A Spot Extension (`.spx`) is a gzip tarball holding, at its top level, `manifest.json`,
`docker-compose.yml`, the `docker save` image archive(s) the manifest's `images` names,
optionally the icon and the udev rules file the manifest names, and any other files the
extension needs (Boston Dynamics, "Running Custom Applications with Spot",
`docs/payload/docker_containers.md` in the Spot SDK, and the SDK's
`python/examples/extensions/build_extension.py`, whose manifest checks these mirror). The
compose checks are this project's: the agent's container must restart by itself, log to
journald, be reachable on the operator ports (`deploy.network`) and read the payload
credentials and the operator control keys from read-only mounts (the keys from outside the
extension's own folder, which an upgrade replaces).
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any, TypeGuard

import yaml

# Re-exported: where an incoming port may be on CORE I/O.
from deploy.network import PAYLOAD_PORT_RANGE as PAYLOAD_PORT_RANGE
from deploy.network import PAYLOAD_RESERVED_PORTS as PAYLOAD_RESERVED_PORTS
from deploy.network import ListeningPort, network_problems

MANIFEST_NAME = "manifest.json"
COMPOSE_NAME = "docker-compose.yml"

# Where CORE I/O keeps its payload GUID and secret (two lines), and where the agent's container
# reads them (same path inside, as the SDK's CORE I/O examples mount it).
PAYLOAD_CREDENTIALS_PATH = "/opt/payload_credentials/payload_guid_and_secret"

# Where the container reads operator control's CurveZMQ keys (configs/payload.yaml's
# control.curve_keys_dir), mounted read-only from the CORE I/O. Installing an extension first
# deletes its folder, /data/.extensions/<extension_name> (where relative compose paths point),
# so keys kept there would be lost with every new version.
OPERATOR_KEYS_PATH = "/opt/spot-cue-agent/keys"
EXTENSIONS_DIR = "/data/.extensions"

# The extension's name ("Running Custom Applications with Spot", "Extension Structure"): only
# letters, digits, '-' and '_' (also what the SDK's build_extension.py checks), and never the
# special strings `coreio` or `mission_control` (CORE I/O 4.1.0 cannot uninstall an extension
# whose name breaks these rules from its portal). The docs write those strings in lower case
# without saying whether CORE I/O compares case; refusing them in any case costs a rename,
# while accepting one CORE I/O refuses costs an SSH session on the robot.
EXTENSION_NAME_PATTERN = re.compile(r"^[A-Za-z0-9_-]+$")
RESERVED_NAME_PARTS = ("coreio", "mission_control")
# The docs give no length limit; the name becomes a directory name on the CORE I/O
# (/data/.extensions/<name>), which Linux file systems cap at 255 bytes.
EXTENSION_NAME_MAX = 255
# udev reads only files ending .rules from its rules directories (udev(7)); CORE I/O copies
# the manifest's `udev_rules` file there ("Other files").
UDEV_RULES_SUFFIX = ".rules"
VERSION_PATTERN = re.compile(r"^\d+\.\d+\.\d+$")
_INSTALLATION_TARGETS = ("spot", "orbit")
_RESTART_POLICIES = ("always", "unless-stopped", "on-failure")
ARCHITECTURES = ("arm64", "amd64")


class PackageError(ValueError):
    """An input to the extension (image archive, manifest, compose file, .spx) is not right."""


def load_manifest(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise PackageError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except json.JSONDecodeError as exc:
        raise PackageError(f"{path}: not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise PackageError(f"{path}: expected a JSON object")
    return data


def load_compose(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise PackageError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise PackageError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise PackageError(f"{path}: expected a mapping at the top level")
    return data


def manifest_problems(manifest: dict[str, Any]) -> list[str]:
    """What is wrong with a Spot Extension manifest (empty list: nothing)."""
    problems = extension_name_problems(manifest.get("extension_name"))
    version = manifest.get("version")
    if not isinstance(version, str) or not VERSION_PATTERN.fullmatch(version):
        problems.append(f"version must be X.Y.Z with integers X, Y, Z (got {version!r})")
    if not isinstance(manifest.get("description"), str) or not manifest["description"].strip():
        problems.append("description must be a non-empty string")
    images = manifest.get("images")
    if not isinstance(images, list) or not images or not all(isinstance(i, str) for i in images):
        problems.append(
            f"images must be a non-empty list of image archive file names (got {images!r})"
        )
    else:
        for image in images:
            if (
                "/" in image
                or image.startswith(".")
                or not image.endswith((".tar", ".tar.gz", ".tgz"))
            ):
                problems.append(
                    f"images entry {image!r} must be a plain file name ending .tar, .tar.gz or .tgz"
                )
    target = manifest.get("installation_target", "spot")
    if target not in _INSTALLATION_TARGETS:
        problems.append(
            f"installation_target must be one of {_INSTALLATION_TARGETS} (got {target!r})"
        )
    icon = manifest.get("icon")
    if icon is not None and not is_plain_name(icon):
        problems.append(f"icon must be a plain file name (got {icon!r})")
    udev = manifest.get("udev_rules")
    if udev is not None and (not is_plain_name(udev) or not udev.endswith(UDEV_RULES_SUFFIX)):
        problems.append(
            f"udev_rules must be a plain file name ending {UDEV_RULES_SUFFIX} (udev ignores "
            f"other files) (got {udev!r})"
        )
    for key in ("files_to_save", "directories_to_save"):
        problems += _saved_paths_problems(key, manifest.get(key))
    date = manifest.get("date")
    if date is not None:
        try:
            datetime.fromisoformat(str(date))
        except ValueError:
            problems.append(f"date must be an ISO 8601 time (got {date!r})")
    return problems


def extension_name_problems(name: Any) -> list[str]:
    """What is wrong with an extension name under Boston Dynamics' naming rules (empty: nothing)."""
    if not isinstance(name, str) or not EXTENSION_NAME_PATTERN.fullmatch(name):
        return [f"extension_name must be letters, digits, '-' and '_' only (got {name!r})"]
    problems = [
        f"extension_name must not contain {part!r} (reserved by CORE I/O) (got {name!r})"
        for part in RESERVED_NAME_PARTS
        if part in name.lower()
    ]
    if len(name) > EXTENSION_NAME_MAX:
        problems.append(
            f"extension_name is {len(name)} characters; at most {EXTENSION_NAME_MAX} fit in the "
            "name of its folder on the CORE I/O"
        )
    return problems


def is_plain_name(name: Any) -> TypeGuard[str]:
    """True for a file name that sits at the top level of an extension (no folder, not . or ..)."""
    return (
        isinstance(name, str)
        and name not in ("", ".", "..")
        and "/" not in name
        and "\\" not in name
        and "\0" not in name
    )


def _saved_paths_problems(key: str, paths: Any) -> list[str]:
    """`files_to_save` / `directories_to_save`: paths kept across upgrades, relative to the
    extension's folder ("Running Custom Applications with Spot", "Extension Structure")."""
    if paths is None:
        return []
    if not isinstance(paths, list) or not all(isinstance(p, str) and p for p in paths):
        return [f"{key} must be a list of paths relative to the extension's folder (got {paths!r})"]
    return [
        f"{key} entry {p!r} must be relative to the extension's folder, without '..'"
        for p in paths
        if p.startswith("/") or ".." in p.split("/")
    ]


def _service(compose: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    services = compose.get("services")
    if not isinstance(services, dict) or len(services) != 1:
        raise PackageError("docker-compose.yml must define exactly one service (the agent)")
    ((name, service),) = services.items()
    if not isinstance(service, dict):
        raise PackageError(f"docker-compose.yml: service {name!r} must be a mapping")
    return name, service


def compose_image(compose: dict[str, Any]) -> str:
    """The `name:tag` image reference the compose file's (single) service runs."""
    name, service = _service(compose)
    image = service.get("image")
    if not isinstance(image, str) or ":" not in image:
        raise PackageError(
            f"docker-compose.yml: service {name!r} needs `image: name:tag` (got {image!r})"
        )
    return image


def _volume_parts(volume: Any) -> tuple[str, str, str]:
    """(host, container, mode) of a short-syntax or long-syntax volume entry."""
    if isinstance(volume, str):
        parts = volume.split(":")
        host, container = parts[0], parts[1] if len(parts) > 1 else parts[0]
        return host, container, parts[2] if len(parts) > 2 else "rw"
    if isinstance(volume, dict):
        return (
            str(volume.get("source", "")),
            str(volume.get("target", "")),
            "ro" if volume.get("read_only") else "rw",
        )
    return "", "", ""


def compose_problems(compose: dict[str, Any], ports: list[ListeningPort]) -> list[str]:
    """What keeps a compose file from running the agent well on CORE I/O (empty: nothing).

    `ports` are the ones the agent listens on with the config the container runs
    (`deploy.network.listening_ports`): bridge networking must publish exactly those.
    """
    try:
        name, service = _service(compose)
        compose_image(compose)
    except PackageError as exc:
        return [str(exc)]
    problems = []
    where = f"service {name!r}"
    if service.get("restart") not in _RESTART_POLICIES:
        problems.append(
            f"{where}: restart must be one of {_RESTART_POLICIES} so the agent comes back after "
            f"a failure or a reboot (got {service.get('restart')!r})"
        )
    logging_cfg = service.get("logging") or {}
    if not isinstance(logging_cfg, dict) or logging_cfg.get("driver") != "journald":
        problems.append(f"{where}: logging.driver must be journald (the payload's system log)")
    problems += network_problems(where, service, ports)
    mounts = [_volume_parts(v) for v in service.get("volumes") or []]
    creds = [m for m in mounts if m[0] == PAYLOAD_CREDENTIALS_PATH]
    if not creds:
        problems.append(f"{where}: must mount {PAYLOAD_CREDENTIALS_PATH} (the payload credentials)")
    elif creds[0][2] != "ro":
        problems.append(f"{where}: mount the payload credentials read-only (':ro')")
    keys = [m for m in mounts if m[1] == OPERATOR_KEYS_PATH]
    if not keys:
        problems.append(
            f"{where}: must mount the operator keys directory at {OPERATOR_KEYS_PATH} "
            "(configs/payload.yaml's control.curve_keys_dir)"
        )
    else:
        host, _, mode = keys[0]
        if mode != "ro":
            problems.append(f"{where}: mount the operator keys read-only (':ro')")
        if not host.startswith("/") or (host.rstrip("/") + "/").startswith(EXTENSIONS_DIR + "/"):
            problems.append(
                f"{where}: keep the operator keys in an absolute host directory outside "
                f"{EXTENSIONS_DIR}/ (got {host!r}): installing a new version of the extension "
                "deletes its folder there"
            )
    return problems


def compose_service(compose: dict[str, Any]) -> dict[str, Any]:
    """The compose file's one service (the agent's); `PackageError` if it has not exactly one."""
    return _service(compose)[1]


def compose_local_files(compose: dict[str, Any], extension_name: Any) -> list[str]:
    """Names of the extension's own files the service mounts.

    An installed extension's files sit in /data/.extensions/<extension_name>/ ("Running Custom
    Applications with Spot", "Install Extension Using Web Portal"); the SDK's fetch tutorial
    mounts from there by that absolute path. `./NAME` points there too (Compose resolves
    relative paths against the compose file's folder). Either way NAME must be packed into the
    extension, or Docker mounts an empty directory made on the spot.
    """
    prefixes = ["./"]
    if isinstance(extension_name, str) and extension_name:
        prefixes.append(f"{EXTENSIONS_DIR}/{extension_name}/")
    names = []
    for volume in compose_service(compose).get("volumes") or []:
        host = _volume_parts(volume)[0]
        for prefix in prefixes:
            rest = host.removeprefix(prefix).split("/")[0] if host.startswith(prefix) else ""
            if rest not in ("", "."):
                names.append(rest)
    return names
