"""Shared pieces of the `spot-agent eval` tests: the command as the CLI registers it, and a
small labelled set cut from the real dev set (real grey frames, hand-checked boxes)."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from support.cli import command_app
from support.devset import DEVSET_DIR, devset_subset

from agent.eval.command import eval_command


@pytest.fixture(scope="session")
def eval_app() -> typer.Typer:
    app = command_app("eval", eval_command)
    return app


@pytest.fixture(scope="session")
def subset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return devset_subset(tmp_path_factory.mktemp("subset"), 10)


@pytest.fixture(scope="session")
def devset_dir() -> Path:
    return DEVSET_DIR
