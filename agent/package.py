"""`spot-agent package`: build (or check) the Spot Extension (`.spx`) for Spot's CORE I/O.

The extension is built from the templates in `deploy/` (manifest, compose file, icon) and a
`docker save` archive of the agent image, and checked as a whole before it is kept: the image
the compose file runs is in the archive and built for the payload's CPU, the version is X.Y.Z,
the payload credentials are mounted where the agent reads them (see `agent.extension`).
No Docker engine is needed.
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
from typing import Annotated

import typer
import yaml

from agent.extension import (
    ARCHITECTURES,
    COMPOSE_NAME,
    MANIFEST_NAME,
    VERSION_PATTERN,
    PackageError,
    compose_image,
    compose_problems,
    load_compose,
    load_manifest,
    manifest_problems,
)
from agent.image_archive import ImageArchive, parse_image_archive, read_image_archive, require_image
from deploy import DEPLOY_DIR


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
    text, count = pattern.subn(
        lambda m: f"{m.group(1)}{m.group(2)}{new_image}{m.group(2)}{m.group(3)}", compose_text
    )
    if count != 1:
        raise PackageError(
            f"docker-compose.yml: cannot find the line `image: {image}` to set its tag"
        )
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
    if arch not in ARCHITECTURES:
        raise PackageError(f"--arch must be one of {ARCHITECTURES} (got {arch!r})")
    manifest = load_manifest(deploy_dir / MANIFEST_NAME)
    compose_path = deploy_dir / COMPOSE_NAME
    compose_text = compose_path.read_text() if compose_path.is_file() else ""
    compose = load_compose(compose_path)
    image = compose_image(compose)
    if version is not None:
        if not VERSION_PATTERN.match(version):
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
    require_image(archive, image, arch, str(image_tar))

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
                with (
                    image_tar.open("rb") as src,
                    gzip.open(image_file, "wb", compresslevel=6) as dst,
                ):
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
        require_image(found, image, arch, label)
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
        Path | None,
        typer.Argument(
            help="`docker save` archive (.tar or .tar.gz) of the agent image.", show_default=False
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", "-o", help="Extension file to write (default: ./<extension_name>.spx)."
        ),
    ] = None,
    version: Annotated[
        str | None,
        typer.Option(
            "--version",
            help="Extension version X.Y.Z, also the image tag (default: deploy/manifest.json's).",
        ),
    ] = None,
    arch: Annotated[
        str,
        typer.Option("--arch", help="CPU the image must be built for: arm64 (CORE I/O) or amd64."),
    ] = "arm64",
    check: Annotated[
        Path | None,
        typer.Option("--check", help="Check this existing .spx instead of building one."),
    ] = None,
    deploy_dir: Annotated[
        Path,
        typer.Option(
            "--deploy-dir", help="Folder with manifest.json, docker-compose.yml and the icon."
        ),
    ] = DEPLOY_DIR,
) -> None:
    """Build a CORE I/O Spot Extension (.spx) from a `docker save` archive of the agent image.

    Or, with --check FILE.spx, validate an existing extension.
    """
    try:
        if check is not None:
            if image_tar is not None:
                raise PackageError(
                    "give either an image archive to package or --check FILE.spx, not both"
                )
            _print_summary(check_spx(check, arch=arch), built=False)
            return
        if image_tar is None:
            raise PackageError(
                "missing the image archive: spot-agent package IMAGE.tar [--out FILE.spx]"
            )
        _print_summary(build_spx(image_tar, out, version, deploy_dir, arch), built=True)
    except PackageError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from None
