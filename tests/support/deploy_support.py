"""Helpers for the deploy tests: read deploy/Dockerfile, write real `docker save` archives."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import shlex
import tarfile
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]

DEPLOY = PROJECT_ROOT / "deploy"
DOCKERFILE = DEPLOY / "Dockerfile"


@dataclass(frozen=True)
class Instruction:
    stage: int  # index of the FROM this instruction belongs to
    keyword: str  # upper case: FROM, COPY, ENTRYPOINT...
    args: str  # the rest, continuation lines joined


def dockerfile_instructions(text: str) -> list[Instruction]:
    """Instructions of a Dockerfile, with `\\` continuations joined and comments dropped."""
    out: list[Instruction] = []
    stage = -1
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue  # comment lines inside a continuation are ignored by Docker too
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        keyword, _, args = full.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stage += 1
        out.append(Instruction(stage, keyword, args.strip()))
    return out


def exec_form(args: str) -> list[str]:
    """The JSON array of an exec-form ENTRYPOINT/CMD (shell form is an error here)."""
    value = json.loads(args)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"not an exec-form array: {args}")
    return value


def final_stage(instructions: list[Instruction]) -> list[Instruction]:
    last = max(i.stage for i in instructions)
    return [i for i in instructions if i.stage == last]


def entry_command(instructions: list[Instruction]) -> list[str]:
    """ENTRYPOINT + CMD of the final stage: what the container runs with no `command:`."""
    stage = final_stage(instructions)
    entry = [exec_form(i.args) for i in stage if i.keyword == "ENTRYPOINT"]
    cmd = [exec_form(i.args) for i in stage if i.keyword == "CMD"]
    return (entry[-1] if entry else []) + (cmd[-1] if cmd else [])


def env_of(instructions: list[Instruction]) -> dict[str, str]:
    """ENV of the final stage (`ENV A=1 B=2` form)."""
    env: dict[str, str] = {}
    for i in final_stage(instructions):
        if i.keyword == "ENV":
            for pair in shlex.split(i.args):
                key, sep, value = pair.partition("=")
                if not sep:
                    raise ValueError(f"ENV without '=' is not used in deploy/Dockerfile: {i.args}")
                env[key] = value
    return env


def copy_sources(instructions: list[Instruction]) -> list[tuple[list[str], str]]:
    """(sources, destination) of every COPY from the build context (not `--from=`)."""
    out = []
    for i in instructions:
        if i.keyword != "COPY":
            continue
        words = shlex.split(i.args)
        if any(w.startswith("--from") for w in words):
            continue
        words = [w for w in words if not w.startswith("--")]
        out.append((words[:-1], words[-1]))
    return out


# ---------------------------------------------------------------------------------------------
# docker save archives (the layout Docker 25+ writes: OCI blobs plus docker's manifest.json)
# ---------------------------------------------------------------------------------------------


def _tar_bytes(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def docker_save_bytes(
    tags: list[str], arch: str = "arm64", os_name: str = "linux", docker_manifest: bool = True
) -> bytes:
    """A real `docker save` archive of a one-layer image (`docker load` accepts this layout)."""
    layer = _tar_bytes({"app/hello.txt": b"spot-cue-agent test layer\n"})
    config = json.dumps(
        {
            "architecture": arch,
            "os": os_name,
            "config": {"Entrypoint": ["spot-agent", "run"], "Env": ["PATH=/opt/venv/bin"]},
            "rootfs": {"type": "layers", "diff_ids": [f"sha256:{_sha(layer)}"]},
            "history": [{"created_by": "COPY app /app"}],
        }
    ).encode()
    oci_manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": f"sha256:{_sha(config)}",
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": f"sha256:{_sha(layer)}",
                    "size": len(layer),
                }
            ],
        }
    ).encode()
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [
                {
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "digest": f"sha256:{_sha(oci_manifest)}",
                    "size": len(oci_manifest),
                    "annotations": {
                        "io.containerd.image.name": f"docker.io/library/{t}",
                        "org.opencontainers.image.ref.name": t.rsplit(":", 1)[1],
                    },
                }
                for t in tags
            ],
        }
    ).encode()
    files = {
        "oci-layout": b'{"imageLayoutVersion": "1.0.0"}',
        f"blobs/sha256/{_sha(layer)}": layer,
        f"blobs/sha256/{_sha(config)}": config,
        f"blobs/sha256/{_sha(oci_manifest)}": oci_manifest,
        "index.json": index,
    }
    if docker_manifest:
        files["manifest.json"] = json.dumps(
            [
                {
                    "Config": f"blobs/sha256/{_sha(config)}",
                    "RepoTags": tags,
                    "Layers": [f"blobs/sha256/{_sha(layer)}"],
                }
            ]
        ).encode()
        repos: dict[str, dict[str, str]] = {}
        for t in tags:
            repo, tag = t.rsplit(":", 1)
            repos.setdefault(repo, {})[tag] = _sha(layer)
        files["repositories"] = json.dumps(repos).encode()
    return _tar_bytes(files)


def write_docker_save(path: Path, tags: list[str], gz: bool = False, **kwargs: object) -> Path:
    data = docker_save_bytes(tags, **kwargs)  # type: ignore[arg-type]
    path.write_bytes(gzip.compress(data) if gz else data)
    return path
