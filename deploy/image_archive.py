"""Read a `docker save` archive without Docker: its image tags and the platform of each image.

Docker 25+ writes an OCI layout (`index.json`, `blobs/sha256/...`) plus docker's own
`manifest.json` (config and tags per image); older Docker writes only the latter, which is
also the only one older engines (as a CORE I/O may run) can `docker load`. Only the small
metadata members are read, in one streaming pass, so a gzipped archive of any size works.
"""

from __future__ import annotations

import gzip
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from deploy.extension import PackageError

# Metadata members of an image archive are small; layers are not and are never read.
_MAX_METADATA_BYTES = 4 * 1024 * 1024


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
        raise PackageError(
            f"{label}: not a tar archive (docker save output expected): {exc}"
        ) from exc
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
    if (
        not isinstance(entries, list)
        or not entries
        or not all(isinstance(e, dict) for e in entries)
    ):
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


def require_image(archive: ImageArchive, image: str, arch: str, label: str) -> None:
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
