"""`spot-agent package`: build (or check) the Spot Extension (`.spx`) for Spot's CORE I/O.

The extension is built from the templates in `deploy/` (manifest, compose file, icon), a
`docker save` archive of the agent image and any udev rules and extra files the user adds, and
checked as a whole before it is kept (`deploy.spx_check`): the image the compose file runs is in
the archive and built for the payload's CPU, the version is X.Y.Z, the payload credentials are
mounted where the agent reads them, the compose file publishes the ports the agent's config
listens on, every file the manifest names or the compose file mounts from the extension's
folder is packed (see `deploy.extension`). No Docker engine is needed.
"""

from __future__ import annotations

import dataclasses
import gzip
import io
import json
import re
import shutil
import tarfile
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from deploy import DEPLOY_DIR
from deploy.extension import (
    ARCHITECTURES,
    COMPOSE_NAME,
    MANIFEST_NAME,
    VERSION_PATTERN,
    PackageError,
    compose_image,
    compose_problems,
    is_plain_name,
    load_compose,
    load_manifest,
    manifest_problems,
)
from deploy.image_archive import read_image_archive, require_image
from deploy.spx_check import SpxSummary, agent_ports, check_spx, unpacked_mounts


@dataclass(frozen=True)
class _Plan:
    """What goes into the .spx besides the image: checked, ready to write."""

    manifest: dict[str, Any]
    compose_text: str
    image: str
    files: dict[str, Path]  # name in the extension -> file here (icon, udev rules, extras)


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


def _add_file(tar: tarfile.TarFile, name: str, path: Path) -> None:
    """`path`'s content as the regular file `name` (a symlink's target, never the link)."""
    with path.open("rb") as src:
        info = tarfile.TarInfo(name)
        stat = path.stat()
        info.size = stat.st_size
        info.mode = 0o755 if stat.st_mode & 0o111 else 0o644  # scripts stay executable
        info.mtime = int(stat.st_mtime)
        tar.addfile(info, src)


def _packed_files(
    manifest: dict[str, Any],
    deploy_dir: Path,
    udev_rules: Path | None,
    extras: Sequence[Path],
) -> dict[str, Path]:
    """Icon, udev rules and extra files by their name in the extension; clashes are errors.

    `udev_rules` (a file anywhere) becomes the manifest's `udev_rules`; without it, a
    `udev_rules` the manifest names is read from `deploy_dir`, like the icon.
    """
    taken = {MANIFEST_NAME: "the manifest", COMPOSE_NAME: "the compose file"}
    taken.update({image: "the image archive" for image in manifest.get("images") or []})
    wanted: list[tuple[str, Path, str]] = []
    icon = manifest.get("icon")
    if is_plain_name(icon):
        wanted.append((icon, deploy_dir / icon, "the icon"))
    if udev_rules is not None:
        manifest["udev_rules"] = udev_rules.name
        wanted.append((udev_rules.name, udev_rules, "the udev rules"))
    elif is_plain_name(udev := manifest.get("udev_rules")):
        wanted.append((udev, deploy_dir / udev, "the udev rules"))
    wanted += [(path.name, path, f"extra file {str(path)!r}") for path in extras]
    files: dict[str, Path] = {}
    for name, path, what in wanted:
        if not is_plain_name(name):
            raise PackageError(f"{what}: {name!r} is not a file name an extension can hold")
        if not path.is_file():
            raise PackageError(f"{what}: {path} is not a file" if path.exists()
                               else f"{what}: {path} does not exist")  # fmt: skip
        if name in taken:
            raise PackageError(
                f"{what} would be packed as {name!r}, which is already {taken[name]}: rename it"
            )
        taken[name] = what
        files[name] = path
    return files


def _plan(
    deploy_dir: Path,
    version: str | None,
    config: str | Path | None,
    udev_rules: Path | None,
    extras: Sequence[Path],
) -> _Plan:
    """Read and check `deploy_dir`'s manifest and compose file and the files to pack with them."""
    manifest = load_manifest(deploy_dir / MANIFEST_NAME)
    compose_path = deploy_dir / COMPOSE_NAME
    compose_text = compose_path.read_text() if compose_path.is_file() else ""
    compose = load_compose(compose_path)
    image = compose_image(compose)
    if version is not None:
        if not VERSION_PATTERN.fullmatch(version):
            raise PackageError(f"--version must be X.Y.Z with integers X, Y, Z (got {version!r})")
        manifest["version"] = version
        compose_text, image = _with_version(compose_text, image, version)
        compose = yaml.safe_load(compose_text)
    manifest.setdefault("installation_target", "spot")
    manifest.setdefault("date", datetime.now(timezone.utc).isoformat(timespec="seconds"))
    files = _packed_files(manifest, deploy_dir, udev_rules, extras)
    problems = manifest_problems(manifest) + compose_problems(compose, agent_ports(compose, config))
    if len(manifest.get("images") or []) != 1:
        problems.append("manifest images must name exactly one image archive (the agent's)")
    packed = {MANIFEST_NAME, COMPOSE_NAME, *files}
    problems += unpacked_mounts(compose, manifest.get("extension_name"), packed)
    if problems:
        raise PackageError("deploy files are not valid:\n  " + "\n  ".join(problems))
    return _Plan(manifest, compose_text, image, files)


def _copy_image(image_tar: Path, dest: Path, gzipped: bool) -> None:
    if gzipped:
        with image_tar.open("rb") as src, gzip.open(dest, "wb", compresslevel=6) as dst:
            shutil.copyfileobj(src, dst, 1024 * 1024)
    else:
        with gzip.open(image_tar, "rb") as src, dest.open("wb") as dst:
            shutil.copyfileobj(src, dst, 1024 * 1024)


def build_spx(
    image_tar: Path,
    out: Path | None = None,
    version: str | None = None,
    deploy_dir: Path = DEPLOY_DIR,
    arch: str = "arm64",
    *,
    config: str | Path | None = None,
    udev_rules: Path | None = None,
    extras: Sequence[Path] = (),
) -> SpxSummary:
    """Build the extension from `deploy_dir`'s manifest/compose/icon and a `docker save` archive.

    `version` (X.Y.Z) replaces the manifest's version and the compose image's tag in the copies
    packed into the .spx (the files in `deploy_dir` are not changed). `udev_rules` and `extras`
    are packed at the top level under their own names. The .spx is written next to its final
    name and moved there only once complete, then checked with `check_spx`.
    """
    if arch not in ARCHITECTURES:
        raise PackageError(f"--arch must be one of {ARCHITECTURES} (got {arch!r})")
    plan = _plan(deploy_dir, version, config, udev_rules, extras)
    image_member = plan.manifest["images"][0]
    archive = read_image_archive(image_tar)
    require_image(archive, plan.image, arch, str(image_tar))

    out = out if out is not None else Path.cwd() / f"{plan.manifest['extension_name']}.spx"
    if out.suffix != ".spx":
        raise PackageError(f"{out}: the extension file must end in .spx")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".spx-build-") as tmp:
        tmp_dir = Path(tmp)
        image_file = image_tar
        wants_gzip = image_member.endswith((".gz", ".tgz"))
        if wants_gzip != _is_gzip(image_tar):
            image_file = tmp_dir / image_member
            _copy_image(image_tar, image_file, wants_gzip)
        partial = tmp_dir / out.name
        # The image archive is compressed already: a light outer gzip is as small and faster.
        with tarfile.open(partial, "w:gz", compresslevel=1) as tar:
            _add_bytes(tar, MANIFEST_NAME, (json.dumps(plan.manifest, indent=2) + "\n").encode())
            _add_bytes(tar, COMPOSE_NAME, plan.compose_text.encode())
            for name, path in plan.files.items():
                _add_file(tar, name, path)
            tar.add(image_file, arcname=image_member, recursive=False)
        summary = check_spx(partial, arch=arch, config=config)
        partial.replace(out)
    return dataclasses.replace(summary, path=out)


def _print_summary(summary: SpxSummary, built: bool) -> None:
    verb = "built" if built else "ok"
    typer.echo(
        f"{verb}: {summary.path} (extension {summary.extension_name} {summary.version}, "
        f"image {summary.image}, {', '.join(summary.platforms)})"
    )
    for name, size in sorted(summary.members.items()):
        role = "  (udev rules)" if name == summary.udev_rules else (
            "  (extra)" if name in summary.extras else ""
        )  # fmt: skip
        typer.echo(f"  {size:>14,d}  {name}{role}")


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
            "--deploy-dir",
            help="Folder with manifest.json, docker-compose.yml and the icon (default: the ones "
            "installed with spot-cue-agent, the package's deploy/).",
            show_default=False,
        ),
    ] = DEPLOY_DIR,
    udev_rules: Annotated[
        Path | None,
        typer.Option(
            "--udev-rules",
            metavar="FILE.rules",
            help="udev rules file (NAME.rules) CORE I/O installs with the extension; becomes "
            "the manifest's udev_rules.",
            show_default=False,
        ),
    ] = None,
    extras: Annotated[
        list[Path] | None,
        typer.Option(
            "--extra",
            metavar="FILE",
            help="Another file to pack (repeatable); on the robot it sits in the extension's "
            "folder, /data/.extensions/<extension_name>/, where the compose file can mount it.",
            show_default=False,
        ),
    ] = None,
    config: Annotated[
        str | None,
        typer.Option(
            "--config",
            metavar="NAME|FILE",
            help="Agent config (file or shipped name) whose operator ports the compose file "
            "must publish (default: the one the container runs, `payload`).",
            show_default=False,
        ),
    ] = None,
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
            if udev_rules is not None or extras:
                raise PackageError(
                    "--udev-rules and --extra add files to a new extension; --check reads "
                    "what the .spx holds"
                )
            _print_summary(check_spx(check, arch=arch, config=config), built=False)
            return
        if image_tar is None:
            raise PackageError(
                "missing the image archive: spot-agent package IMAGE.tar [--out FILE.spx]"
            )
        summary = build_spx(
            image_tar, out, version, deploy_dir, arch,
            config=config, udev_rules=udev_rules, extras=extras or (),
        )  # fmt: skip
        _print_summary(summary, built=True)
    except PackageError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from None
