"""`spot-agent package`: build (or check) the Spot Extension (`.spx`) for Spot's CORE I/O.

A Spot Extension is a gzip tarball holding, at its top level, `manifest.json`,
`docker-compose.yml`, the `docker save` image archive(s) named by the manifest's `images`, and
optionally the icon the manifest names (Boston Dynamics, "Running Custom Applications with
Spot", and the SDK's `python/examples/extensions/build_extension.py`). This module builds one
from an image archive and the templates in `deploy/`, and checks that the pieces agree: the
image the compose file runs is in the archive, built for the CPU the payload has, the version
is X.Y.Z, and the payload credentials are mounted where the agent reads them.

No Docker engine is needed: the image archive is read as the tar file it is.
"""

from __future__ import annotations

import gzip
import io
import json
import re
import shutil
import tarfile
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Annotated, Any, Optional

import typer
import yaml

from agent.paths import PROJECT_ROOT

DEPLOY_DIR = PROJECT_ROOT / "deploy"
MANIFEST_NAME = "manifest.json"
COMPOSE_NAME = "docker-compose.yml"

# Where CORE I/O keeps its payload GUID and secret (two lines), and where the agent's container
# reads them (same path inside, as the SDK's CORE I/O examples mount it).
PAYLOAD_CREDENTIALS_PATH = "/opt/payload_credentials/payload_guid_and_secret"

# Incoming ports a CORE I/O's firewall lets through (TCP and UDP), less one it keeps for itself.
PAYLOAD_PORT_RANGE = range(21000, 22001)
PAYLOAD_RESERVED_PORTS = frozenset({21443})

_EXTENSION_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
_VERSION = re.compile(r"^\d+\.\d+\.\d+$")
_INSTALLATION_TARGETS = ("spot", "orbit")
_RESTART_POLICIES = ("always", "unless-stopped", "on-failure")
_ARCHITECTURES = ("arm64", "amd64")
# Metadata members of an image archive are small; layers are not and are never read.
_MAX_METADATA_BYTES = 4 * 1024 * 1024


class PackageError(ValueError):
    """An input to the extension (image archive, manifest, compose file, .spx) is not right."""


# ---------------------------------------------------------------------------------------------
# manifest.json and docker-compose.yml
# ---------------------------------------------------------------------------------------------


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
    problems = []
    name = manifest.get("extension_name")
    if not isinstance(name, str) or not _EXTENSION_NAME.match(name):
        problems.append(
            "extension_name must be letters, digits, '-' and '_' only "
            f"(got {name!r})"
        )
    version = manifest.get("version")
    if not isinstance(version, str) or not _VERSION.match(version):
        problems.append(f"version must be X.Y.Z with integers X, Y, Z (got {version!r})")
    if not isinstance(manifest.get("description"), str) or not manifest["description"].strip():
        problems.append("description must be a non-empty string")
    images = manifest.get("images")
    if not isinstance(images, list) or not images or not all(isinstance(i, str) for i in images):
        problems.append(f"images must be a non-empty list of image archive file names (got {images!r})")
    else:
        for image in images:
            if "/" in image or image.startswith(".") or not image.endswith((".tar", ".tar.gz", ".tgz")):
                problems.append(
                    f"images entry {image!r} must be a plain file name ending .tar, .tar.gz or .tgz"
                )
    target = manifest.get("installation_target", "spot")
    if target not in _INSTALLATION_TARGETS:
        problems.append(f"installation_target must be one of {_INSTALLATION_TARGETS} (got {target!r})")
    icon = manifest.get("icon")
    if icon is not None and (not isinstance(icon, str) or "/" in icon or not icon):
        problems.append(f"icon must be a plain file name (got {icon!r})")
    date = manifest.get("date")
    if date is not None:
        try:
            datetime.fromisoformat(str(date))
        except ValueError:
            problems.append(f"date must be an ISO 8601 time (got {date!r})")
    return problems


def _service(compose: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    services = compose.get("services")
    if not isinstance(services, dict) or len(services) != 1:
        raise PackageError("docker-compose.yml must define exactly one service (the agent)")
    (name, service), = services.items()
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


def compose_problems(compose: dict[str, Any]) -> list[str]:
    """What keeps a compose file from running the agent well on CORE I/O (empty: nothing)."""
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
    if service.get("network_mode") != "host":
        problems.append(
            f"{where}: network_mode must be host (CORE I/O's firewall opens ports 21000-22000 "
            "on the host network stack)"
        )
    mounts = [_volume_parts(v) for v in service.get("volumes") or []]
    creds = [m for m in mounts if m[0] == PAYLOAD_CREDENTIALS_PATH]
    if not creds:
        problems.append(f"{where}: must mount {PAYLOAD_CREDENTIALS_PATH} (the payload credentials)")
    elif creds[0][2] != "ro":
        problems.append(f"{where}: mount the payload credentials read-only (':ro')")
    for port in service.get("ports") or []:
        problems.append(f"{where}: ports {port!r} has no effect with network_mode host")
    return problems


# ---------------------------------------------------------------------------------------------
# docker save archives
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageArchive:
    """What a `docker save` archive holds: its image references and their platforms."""

    tags: tuple[str, ...]
    platforms: tuple[str, ...]  # "linux/arm64", one per image

    @property
    def architectures(self) -> tuple[str, ...]:
        return tuple(p.split("/")[1] for p in self.platforms)


def _short_ref(ref: str) -> str:
    """`docker.io/library/x:1` -> `x:1`, as `docker images` and compose files write it."""
    for prefix in ("docker.io/library/", "docker.io/"):
        if ref.startswith(prefix):
            return ref[len(prefix) :]
    return ref


def _read_archive_metadata(fileobj: IO[bytes], label: str) -> dict[str, bytes]:
    """Small JSON-ish members of a (possibly gzipped) tar read in one streaming pass."""
    small: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=fileobj, mode="r|*") as tar:
            for member in tar:
                name = member.name.removeprefix("./")
                wanted = name in ("manifest.json", "index.json", "repositories") or (
                    name.endswith(".json") or name.startswith("blobs/")
                )
                if member.isfile() and wanted and member.size <= _MAX_METADATA_BYTES:
                    handle = tar.extractfile(member)
                    if handle is not None:
                        small[name] = handle.read()
    except (tarfile.TarError, EOFError, OSError, gzip.BadGzipFile) as exc:
        raise PackageError(f"{label}: not a tar archive (docker save output expected): {exc}") from exc
    return small


def _json_member(small: dict[str, bytes], name: str, label: str) -> Any:
    try:
        return json.loads(small[name])
    except KeyError:
        raise PackageError(f"{label}: {name} referenced but missing from the archive") from None
    except json.JSONDecodeError as exc:
        raise PackageError(f"{label}: {name} is not valid JSON: {exc}") from exc


def parse_image_archive(fileobj: IO[bytes], label: str) -> ImageArchive:
    small = _read_archive_metadata(fileobj, label)
    if "manifest.json" not in small:
        if "index.json" in small:
            raise PackageError(
                f"{label}: an OCI layout without docker's manifest.json; the Docker on CORE I/O "
                "loads `docker save` archives: export with `docker save` or "
                "`docker buildx build --output type=docker,dest=...`"
            )
        raise PackageError(
            f"{label}: no manifest.json inside: not a `docker save` archive "
            "(make one with `docker save IMAGE:TAG -o image.tar`)"
        )
    entries = _json_member(small, "manifest.json", label)
    if not isinstance(entries, list) or not entries or not all(isinstance(e, dict) for e in entries):
        raise PackageError(f"{label}: manifest.json is not a docker save image list")
    tags: list[str] = []
    platforms: list[str] = []
    for entry in entries:
        tags.extend(_short_ref(t) for t in entry.get("RepoTags") or [])
        config_name = entry.get("Config")
        if not isinstance(config_name, str):
            raise PackageError(f"{label}: manifest.json entry without a Config")
        config = _json_member(small, config_name.removeprefix("./"), label)
        if not isinstance(config, dict):
            raise PackageError(f"{label}: image config {config_name} is not a JSON object")
        platforms.append(f"{config.get('os', '?')}/{config.get('architecture', '?')}")
    if not tags:
        raise PackageError(
            f"{label}: the image has no tag (RepoTags empty): save it by name, "
            "`docker save spot-cue-agent:X.Y.Z`, not by image id"
        )
    return ImageArchive(tags=tuple(tags), platforms=tuple(platforms))


def read_image_archive(path: Path) -> ImageArchive:
    """Tags and platforms of a `docker save` archive (.tar or .tar.gz)."""
    if not path.is_file():
        raise PackageError(f"{path}: image archive not found")
    with path.open("rb") as fileobj:
        return parse_image_archive(fileobj, str(path))


def _require_image(archive: ImageArchive, image: str, arch: str, label: str) -> None:
    if image not in archive.tags:
        raise PackageError(
            f"{label}: holds {list(archive.tags)} but docker-compose.yml runs {image!r}: "
            f"build and save the image as {image!r}"
        )
    wrong = [p for p in archive.platforms if p != f"linux/{arch}"]
    if wrong:
        raise PackageError(
            f"{label}: image built for {', '.join(wrong)} but linux/{arch} is required "
            "(CORE I/O is arm64: `docker buildx build --platform linux/arm64 ...`; "
            "pass --arch amd64 only for an amd64 payload computer)"
        )


# ---------------------------------------------------------------------------------------------
# building and checking the .spx
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SpxSummary:
    """What an extension holds, once checked."""

    path: Path
    extension_name: str
    version: str
    image: str
    platforms: tuple[str, ...]
    members: dict[str, int] = field(default_factory=dict)  # name -> size in bytes


def _with_version(compose_text: str, image: str, version: str) -> tuple[str, str]:
    """The compose text with its image tag set to `version`, and the new image reference."""
    repo = image.rsplit(":", 1)[0]
    new_image = f"{repo}:{version}"
    pattern = re.compile(r"^(\s*image:\s*)([\"']?)" + re.escape(image) + r"\2(\s*(#.*)?)$", re.M)
    text, count = pattern.subn(lambda m: f"{m.group(1)}{m.group(2)}{new_image}{m.group(2)}{m.group(3)}", compose_text)
    if count != 1:
        raise PackageError(f"docker-compose.yml: cannot find the line `image: {image}` to set its tag")
    return text, new_image


def _is_gzip(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(2) == b"\x1f\x8b"


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    info.mtime = int(datetime.now(timezone.utc).timestamp())
    tar.addfile(info, io.BytesIO(data))


def build_spx(
    image_tar: Path,
    out: Path | None = None,
    version: str | None = None,
    deploy_dir: Path = DEPLOY_DIR,
    arch: str = "arm64",
) -> SpxSummary:
    """Build the extension from `deploy_dir`'s manifest/compose/icon and a `docker save` archive.

    `version` (X.Y.Z) replaces the manifest's version and the compose image's tag in the copies
    packed into the .spx (the files in `deploy_dir` are not changed). The .spx is written next
    to its final name and moved there only once complete, then checked with `check_spx`.
    """
    if arch not in _ARCHITECTURES:
        raise PackageError(f"--arch must be one of {_ARCHITECTURES} (got {arch!r})")
    manifest = load_manifest(deploy_dir / MANIFEST_NAME)
    compose_path = deploy_dir / COMPOSE_NAME
    compose_text = compose_path.read_text() if compose_path.is_file() else ""
    compose = load_compose(compose_path)
    image = compose_image(compose)
    if version is not None:
        if not _VERSION.match(version):
            raise PackageError(f"--version must be X.Y.Z with integers X, Y, Z (got {version!r})")
        manifest["version"] = version
        compose_text, image = _with_version(compose_text, image, version)
        compose = yaml.safe_load(compose_text)
    manifest.setdefault("installation_target", "spot")
    manifest.setdefault("date", datetime.now(timezone.utc).isoformat(timespec="seconds"))
    problems = manifest_problems(manifest) + compose_problems(compose)
    if len(manifest.get("images") or []) != 1:
        problems.append("manifest images must name exactly one image archive (the agent's)")
    if problems:
        raise PackageError("deploy files are not valid:\n  " + "\n  ".join(problems))
    image_member = manifest["images"][0]
    icon = manifest.get("icon")
    icon_path = deploy_dir / icon if icon else None
    if icon_path is not None and not icon_path.is_file():
        raise PackageError(f"manifest names icon {icon!r} but {icon_path} does not exist")

    archive = read_image_archive(image_tar)
    _require_image(archive, image, arch, str(image_tar))

    out = out if out is not None else Path.cwd() / f"{manifest['extension_name']}.spx"
    if out.suffix != ".spx":
        raise PackageError(f"{out}: the extension file must end in .spx")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".spx-build-") as tmp:
        tmp_dir = Path(tmp)
        image_file = image_tar
        wants_gzip = image_member.endswith((".gz", ".tgz"))
        if wants_gzip != _is_gzip(image_tar):
            image_file = tmp_dir / image_member
            if wants_gzip:
                with image_tar.open("rb") as src, gzip.open(image_file, "wb", compresslevel=6) as dst:
                    shutil.copyfileobj(src, dst, 1024 * 1024)
            else:
                with gzip.open(image_tar, "rb") as src, image_file.open("wb") as dst:
                    shutil.copyfileobj(src, dst, 1024 * 1024)
        partial = tmp_dir / out.name
        # The image archive is compressed already: a light outer gzip is as small and faster.
        with tarfile.open(partial, "w:gz", compresslevel=1) as tar:
            _add_bytes(tar, MANIFEST_NAME, (json.dumps(manifest, indent=2) + "\n").encode())
            _add_bytes(tar, COMPOSE_NAME, compose_text.encode())
            if icon_path is not None:
                tar.add(icon_path, arcname=icon_path.name, recursive=False)
            tar.add(image_file, arcname=image_member, recursive=False)
        summary = check_spx(partial, arch=arch)
        partial.replace(out)
    return SpxSummary(
        path=out,
        extension_name=summary.extension_name,
        version=summary.version,
        image=summary.image,
        platforms=summary.platforms,
        members=summary.members,
    )


def check_spx(spx: Path, arch: str = "arm64") -> SpxSummary:
    """Validate an extension file; raise `PackageError` listing what is wrong."""
    if not spx.is_file():
        raise PackageError(f"{spx}: not found")
    label = str(spx)
    try:
        tar = tarfile.open(spx, "r:gz")
    except (tarfile.TarError, OSError) as exc:
        raise PackageError(f"{label}: not a gzip tarball (a .spx is `tar czf`): {exc}") from exc
    with tar:
        members = tar.getmembers()
        by_name: dict[str, tarfile.TarInfo] = {}
        problems = []
        for m in members:
            name = m.name.removeprefix("./")
            if not m.isfile():
                problems.append(f"{m.name}: only plain files belong in an extension")
            elif "/" in name or name.startswith(".."):
                problems.append(f"{m.name}: files must sit at the top level of the archive")
            else:
                by_name[name] = m
        for required in (MANIFEST_NAME, COMPOSE_NAME):
            if required not in by_name:
                problems.append(f"{required} missing")
        if problems:
            raise PackageError(f"{label}:\n  " + "\n  ".join(problems))

        def read(name: str) -> bytes:
            handle = tar.extractfile(by_name[name])
            assert handle is not None  # a regular file, checked above
            return handle.read()

        try:
            manifest = json.loads(read(MANIFEST_NAME))
        except json.JSONDecodeError as exc:
            raise PackageError(f"{label}: manifest.json is not valid JSON: {exc}") from exc
        try:
            compose = yaml.safe_load(read(COMPOSE_NAME))
        except yaml.YAMLError as exc:
            raise PackageError(f"{label}: docker-compose.yml is not valid YAML: {exc}") from exc
        if not isinstance(manifest, dict) or not isinstance(compose, dict):
            raise PackageError(f"{label}: manifest.json or docker-compose.yml is not a mapping")
        problems = manifest_problems(manifest) + compose_problems(compose)
        for image_name in manifest.get("images") or []:
            if image_name not in by_name:
                problems.append(f"manifest images names {image_name!r} but the archive lacks it")
        icon = manifest.get("icon")
        if icon and icon not in by_name:
            problems.append(f"manifest icon {icon!r} is not in the archive")
        if problems:
            raise PackageError(f"{label}:\n  " + "\n  ".join(problems))

        image = compose_image(compose)
        found: ImageArchive | None = None
        for image_name in manifest["images"]:
            handle = tar.extractfile(by_name[image_name])
            assert handle is not None
            archive = parse_image_archive(handle, f"{label}:{image_name}")
            if image in archive.tags:
                found = archive
                break
        if found is None:
            raise PackageError(
                f"{label}: no image archive in the extension holds {image!r}, "
                "the image docker-compose.yml runs"
            )
        _require_image(found, image, arch, label)
        return SpxSummary(
            path=spx,
            extension_name=manifest["extension_name"],
            version=manifest["version"],
            image=image,
            platforms=found.platforms,
            members={name: m.size for name, m in by_name.items()},
        )


def _print_summary(summary: SpxSummary, built: bool) -> None:
    verb = "built" if built else "ok"
    typer.echo(
        f"{verb}: {summary.path} (extension {summary.extension_name} {summary.version}, "
        f"image {summary.image}, {', '.join(summary.platforms)})"
    )
    for name, size in sorted(summary.members.items()):
        typer.echo(f"  {size:>14,d}  {name}")


def package_command(
    image_tar: Annotated[
        Optional[Path],
        typer.Argument(help="`docker save` archive (.tar or .tar.gz) of the agent image.", show_default=False),
    ] = None,
    out: Annotated[
        Optional[Path], typer.Option("--out", "-o", help="Extension file to write (default: ./<extension_name>.spx).")
    ] = None,
    version: Annotated[
        Optional[str],
        typer.Option("--version", help="Extension version X.Y.Z, also the image tag (default: deploy/manifest.json's)."),
    ] = None,
    arch: Annotated[
        str, typer.Option("--arch", help="CPU the image must be built for: arm64 (CORE I/O) or amd64.")
    ] = "arm64",
    check: Annotated[
        Optional[Path], typer.Option("--check", help="Check this existing .spx instead of building one.")
    ] = None,
    deploy_dir: Annotated[
        Path, typer.Option("--deploy-dir", help="Folder with manifest.json, docker-compose.yml and the icon.")
    ] = DEPLOY_DIR,
) -> None:
    """Build a CORE I/O Spot Extension (.spx) from a `docker save` archive of the agent image.

    Or, with --check FILE.spx, validate an existing extension.
    """
    try:
        if check is not None:
            if image_tar is not None:
                raise PackageError("give either an image archive to package or --check FILE.spx, not both")
            _print_summary(check_spx(check, arch=arch), built=False)
            return
        if image_tar is None:
            raise PackageError("missing the image archive: spot-agent package IMAGE.tar [--out FILE.spx]")
        _print_summary(build_spx(image_tar, out, version, deploy_dir, arch), built=True)
    except PackageError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from None
