"""Pin the container image's Python packages: writes deploy/constraints.txt.

    python deploy/lock.py

Resolves pyproject.toml's runtime dependencies with pip for CPython 3.11 on linux/arm64
(CORE I/O) and on linux/amd64, binary wheels only (the image compiles nothing), and writes the
pins if both platforms resolve to the same versions (otherwise it says which differ). Needs
pip >= 23 and access to the package index; nothing is installed.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "deploy" / "constraints.txt"
PYTHON = "3.11"
# pip does not widen a manylinux_2_X tag to older ones: list every glibc the image satisfies.
GLIBC_MINORS = range(17, 37)  # bookworm has glibc 2.36


def platform_args(arch: str) -> list[str]:
    args = []
    for minor in GLIBC_MINORS:
        args += ["--platform", f"manylinux_2_{minor}_{arch}"]
    return args + ["--platform", f"manylinux2014_{arch}", "--platform", "any"]


def resolve(requirements: list[str], arch: str) -> dict[str, str]:
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        cmd = [
            sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "--ignore-installed",
            "--report", str(report), "--target", str(Path(tmp) / "target"),
            "--python-version", PYTHON, "--implementation", "cp",
            "--abi", f"cp{PYTHON.replace('.', '')}", "--abi", "abi3", "--abi", "none",
            "--only-binary=:all:", *platform_args(arch), *requirements,
        ]  # fmt: skip
        subprocess.run(cmd, check=True)
        installs = json.loads(report.read_text())["install"]
    return {i["metadata"]["name"].lower(): i["metadata"]["version"] for i in installs}


def main() -> int:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = list(project["dependencies"])
    arm = resolve(requirements, "aarch64")
    amd = resolve(requirements, "x86_64")
    if arm != amd:
        for name in sorted(set(arm) | set(amd)):
            if arm.get(name) != amd.get(name):
                print(f"{name}: arm64 {arm.get(name)} vs amd64 {amd.get(name)}", file=sys.stderr)
        return 1
    lines = [
        "# Exact versions in the spot-cue-agent container image (CPython 3.11, linux/arm64 and",
        "# linux/amd64 resolve alike; every one a binary wheel). Written by deploy/lock.py:",
        "# re-run it after changing pyproject.toml's dependencies.",
        *(f"{name}=={arm[name]}" for name in sorted(arm)),
    ]
    OUT.write_text("\n".join(lines) + "\n")
    print(f"wrote {OUT} ({len(arm)} packages)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
