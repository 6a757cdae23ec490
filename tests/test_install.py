"""The package as a user installs it: a plain (non-editable) wheel, used from an unrelated folder.

The wheel is built from this checkout and unpacked into a folder of its own that goes first on
PYTHONPATH, so every import (and every shipped file: configs, rules, scenarios, deploy files, the
model, the sim's photo) comes from the installed copy, never from the checkout.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent.cli import _register, app

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    # Built from a clean copy: setuptools reuses a checkout's build/ folder, where modules that
    # were moved or deleted since would still be packed.
    source = tmp_path_factory.mktemp("src") / "spot-cue-agent"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv*", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache",
        ".hypothesis", ".mypy_cache", ".ruff_cache"))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(source)],
        check=True, capture_output=True, timeout=300,
    )
    (built,) = out.glob("spot_cue_agent-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("site")
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(target)
    return target


def _run(installed: Path, cwd: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(installed)}
    code = "import sys; from agent.cli import main; sys.argv[0] = 'spot-agent'; main()"
    return subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, env=env, text=True,
                          capture_output=True, timeout=timeout)


def test_wheel_carries_everything_the_commands_need(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in [
        "configs/agent.yaml", "configs/sim.yaml", "configs/payload.yaml",
        "configs/rules/default.yaml", "configs/rules/follow.yaml",
        "configs/scenarios/default.yaml", "configs/scenarios/person_walking.yaml",
        "deploy/Dockerfile", "deploy/docker-compose.yml", "deploy/manifest.json", "deploy/icon.png",
        "perception/models/nanodet_g_coco_int8.tflite", "perception/models/coco_labels.txt",
        "perception/models/movenet_multipose_160_f16.tflite", "perception/models/movenet_labels.txt",
        "perception/models/LICENSE-movenet", "perception/models/calibration.yaml",
        "sim/assets/astronaut_grey.png", "sim/assets/people/walker_puffer.png",
        "agent/py.typed", "perception/py.typed",
    ]:
        assert needed in names, f"{needed} is not in the wheel"
    assert not any(n.startswith("tests/") for n in names)
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)


def test_installed_copy_runs_from_an_unrelated_folder(installed: Path, tmp_path: Path) -> None:
    version = _run(installed, tmp_path, "--version")
    assert version.returncode == 0, version.stderr
    assert version.stdout.startswith("spot-agent (spot-cue-agent) ")
    # Shipped files are found inside the installed copy, by name.
    env = {**os.environ, "PYTHONPATH": str(installed)}
    where = subprocess.run(
        [sys.executable, "-c", "import configs, sim.scene; print(configs.find('sim')); "
         "print(configs.find('follow', configs.RULES)); print(sim.scene.find_scenario('empty'))"],
        cwd=tmp_path, env=env, text=True, capture_output=True, timeout=60, check=True,
    )
    for line in where.stdout.split():
        assert Path(line).is_relative_to(installed), line
    # The whole product: the sim in-process, the agent over TLS gRPC, the default rules.
    demo = _run(installed, tmp_path, "demo", "--duration", "6", "--scenario", "fiducial_ahead",
                timeout=180)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "What the robot saw and did:" in demo.stdout
    assert "saw tag:1" in demo.stdout
    assert str(installed) not in demo.stdout  # shipped files are shown by name


def test_a_name_that_is_neither_a_file_nor_shipped_says_what_exists(installed: Path, tmp_path: Path) -> None:
    bad = _run(installed, tmp_path, "demo", "--scenario", "no_such_world")
    assert bad.returncode == 2
    assert "no_such_world: no such file, and no shipped scenario of that name" in bad.stderr
    assert "person_walking" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_help_shows_no_machine_paths() -> None:
    _register()
    runner = CliRunner()
    commands = [["run"], ["demo"], ["replay"], ["export-frames"], ["sim"], ["detect"], ["package"], ["keys"], ["worker"],
                ["op", "status"], ["op", "launch"], ["op", "snapshot"], ["op", "watch"]]
    for command in commands:
        result = runner.invoke(app, [*command, "--help"], terminal_width=200)
        assert result.exit_code == 0, (command, result.output)
        for machine_path in (str(ROOT), "site-packages", str(Path.home())):
            assert machine_path not in result.output, (command, machine_path)


def test_shipped_names_win_over_folders_of_the_same_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import configs

    (tmp_path / "agent").mkdir()  # e.g. running from a checkout, where agent/ is the package
    (tmp_path / "mine.yaml").write_text("robot: {}\n")
    monkeypatch.chdir(tmp_path)
    assert configs.find("agent") == configs.SHIPPED_DIR / "agent.yaml"
    assert configs.find("mine.yaml") == tmp_path / "mine.yaml"  # a user's file by path
    (tmp_path / "folder").mkdir()
    with pytest.raises(configs.ConfigError, match="folder: is not a file"):
        configs.find("folder")
