"""Checking a Spot Extension (`.spx`) as CORE I/O will read it: `spot-agent package --check`.

Every file at the top level and only once; the manifest and the compose file valid
(`deploy.extension`); every file the manifest names (images, icon, udev rules) and every `./NAME`
the compose file mounts packed; the compose file publishing the ports the agent's config listens
on; the image the compose file runs in an image archive, built for the payload's CPU.
"""

from __future__ import annotations

import json
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import yaml

import configs
from agent.config import load_agent_config
from deploy.extension import (
    COMPOSE_NAME,
    MANIFEST_NAME,
    UDEV_RULES_SUFFIX,
    PackageError,
    compose_image,
    compose_local_files,
    compose_problems,
    compose_service,
    is_plain_name,
    manifest_problems,
)
from deploy.image_archive import ImageArchive, parse_image_archive, require_image
from deploy.network import ListeningPort, config_the_container_runs, listening_ports


@dataclass(frozen=True)
class SpxSummary:
    """What an extension holds, once checked."""

    path: Path
    extension_name: str
    version: str
    image: str
    platforms: tuple[str, ...]
    members: dict[str, int] = field(default_factory=dict)  # name -> size in bytes
    udev_rules: str | None = None
    extras: tuple[str, ...] = ()  # files beyond manifest, compose, images, icon and udev rules


def agent_ports(compose: dict[str, Any], config: str | Path | None = None) -> list[ListeningPort]:
    """The ports the agent listens on with `config`, by default the one the container runs.

    That is the compose `command:`'s `--config`, else the image's own (the shipped payload
    profile), found the way `spot-agent run` finds it: a file by path, else a shipped name.
    """
    value = config if config is not None else config_the_container_runs(compose_service(compose))
    try:
        return listening_ports(load_agent_config(configs.find(value)))
    except configs.ConfigError as exc:
        hint = "" if config is not None else (
            " (the config the container runs; give --config FILE with the same settings)"
        )  # fmt: skip
        raise PackageError(f"cannot check the operator ports: {exc}{hint}") from exc


def unpacked_mounts(compose: dict[str, Any], extension_name: Any, packed: set[str]) -> list[str]:
    """A problem for each file the compose file mounts from the extension's folder but the
    extension does not hold."""
    return [
        f"docker-compose.yml mounts {name!r} from the extension's folder, but the extension does "
        "not hold it (add it with --extra)"
        for name in compose_local_files(compose, extension_name)
        if name not in packed
    ]


def _top_level_members(tar: tarfile.TarFile, label: str) -> dict[str, tarfile.TarInfo]:
    """The archive's files by name; `PackageError` for anything but unique top-level files."""
    by_name: dict[str, tarfile.TarInfo] = {}
    problems = []
    for m in tar.getmembers():
        name = m.name.removeprefix("./")
        if not m.isfile():
            problems.append(f"{m.name}: only plain files belong in an extension")
        elif not is_plain_name(name):
            problems.append(f"{m.name}: files must sit at the top level of the archive")
        elif name in by_name:
            problems.append(f"{name}: in the archive twice (only the last copy would be kept)")
        else:
            by_name[name] = m
    for required in (MANIFEST_NAME, COMPOSE_NAME):
        if required not in by_name:
            problems.append(f"{required} missing")
    if problems:
        raise PackageError(f"{label}:\n  " + "\n  ".join(problems))
    return by_name


def _read(tar: tarfile.TarFile, member: tarfile.TarInfo) -> IO[bytes]:
    handle = tar.extractfile(member)
    assert handle is not None  # a regular file, checked by _top_level_members
    return handle


def _load_members(tar: tarfile.TarFile, by_name: dict[str, tarfile.TarInfo], label: str) -> tuple[
    dict[str, Any], dict[str, Any]
]:  # fmt: skip
    try:
        manifest = json.loads(_read(tar, by_name[MANIFEST_NAME]).read())
    except json.JSONDecodeError as exc:
        raise PackageError(f"{label}: manifest.json is not valid JSON: {exc}") from exc
    try:
        compose = yaml.safe_load(_read(tar, by_name[COMPOSE_NAME]).read())
    except yaml.YAMLError as exc:
        raise PackageError(f"{label}: docker-compose.yml is not valid YAML: {exc}") from exc
    if not isinstance(manifest, dict) or not isinstance(compose, dict):
        raise PackageError(f"{label}: manifest.json or docker-compose.yml is not a mapping")
    return manifest, compose


def _udev_rules_problems(tar: tarfile.TarFile, member: tarfile.TarInfo) -> list[str]:
    """udev rules are text, one rule a line, `#` comments (udev(7)); an empty file is a mistake."""
    try:
        text = _read(tar, member).read().decode("utf-8")
    except UnicodeDecodeError:
        return [f"udev rules {member.name!r} is not a text file"]
    rules = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [] if rules else [f"udev rules {member.name!r} holds no rule"]


def _member_problems(
    tar: tarfile.TarFile, by_name: dict[str, tarfile.TarInfo], manifest: dict[str, Any],
    compose: dict[str, Any],
) -> list[str]:  # fmt: skip
    """Files the manifest or the compose file names that the archive lacks, or that are wrong."""
    problems = []
    for image_name in manifest.get("images") or []:
        if image_name not in by_name:
            problems.append(f"manifest images names {image_name!r} but the archive lacks it")
    for key in ("icon", "udev_rules"):
        name = manifest.get(key)
        if name and name not in by_name:
            problems.append(f"manifest {key} {name!r} is not in the archive")
    udev = manifest.get("udev_rules")
    if isinstance(udev, str) and udev.endswith(UDEV_RULES_SUFFIX) and udev in by_name:
        problems += _udev_rules_problems(tar, by_name[udev])
    try:
        problems += unpacked_mounts(compose, manifest.get("extension_name"), set(by_name))
    except PackageError:
        pass  # the service itself is wrong: compose_problems says so
    return problems


def _find_image(tar: tarfile.TarFile, by_name: dict[str, tarfile.TarInfo], images: list[str],
                image: str, label: str) -> ImageArchive:  # fmt: skip
    for image_name in images:
        archive = parse_image_archive(_read(tar, by_name[image_name]), f"{label}:{image_name}")
        if image in archive.tags:
            return archive
    raise PackageError(
        f"{label}: no image archive in the extension holds {image!r}, "
        "the image docker-compose.yml runs"
    )


def check_spx(spx: Path, arch: str = "arm64", config: str | Path | None = None) -> SpxSummary:
    """Validate an extension file; raise `PackageError` listing what is wrong.

    `config` is the agent config whose ports the compose file must publish (default: the one
    the container runs, see `agent_ports`).
    """
    if not spx.is_file():
        raise PackageError(f"{spx}: not found")
    label = str(spx)
    try:
        tar = tarfile.open(spx, "r:gz")
    except (tarfile.TarError, OSError) as exc:
        raise PackageError(f"{label}: not a gzip tarball (a .spx is `tar czf`): {exc}") from exc
    with tar:
        by_name = _top_level_members(tar, label)
        manifest, compose = _load_members(tar, by_name, label)
        try:
            compose_service(compose)
        except PackageError:
            ports = []  # the compose service itself is wrong: compose_problems says so
        else:
            ports = agent_ports(compose, config)
        problems = manifest_problems(manifest) + compose_problems(compose, ports)
        problems += _member_problems(tar, by_name, manifest, compose)
        if problems:
            raise PackageError(f"{label}:\n  " + "\n  ".join(problems))

        image = compose_image(compose)
        found = _find_image(tar, by_name, manifest["images"], image, label)
        require_image(found, image, arch, label)
        known = {MANIFEST_NAME, COMPOSE_NAME, *manifest["images"], manifest.get("icon"),
                 manifest.get("udev_rules")}  # fmt: skip
        return SpxSummary(
            path=spx,
            extension_name=manifest["extension_name"],
            version=manifest["version"],
            image=image,
            platforms=found.platforms,
            members={name: m.size for name, m in by_name.items()},
            udev_rules=manifest.get("udev_rules"),
            extras=tuple(sorted(name for name in by_name if name not in known)),
        )
