"""The configuration files that ship with spot-cue-agent, and how a name or a path finds one.

`configs/` is installed with the package (agent settings, cue rules, sim scenarios), so every
command has working defaults from any folder, with or without a checkout. A user's own file
always wins: a value that names an existing file is that file; otherwise it may name a shipped
file (`follow`, `rules/follow.yaml`, `sim.yaml`). Nothing here reaches up into the other
packages: every layer (perception, behaviors, sim, agent) may import it.
"""

from __future__ import annotations

from pathlib import Path

from configs.loading import SHIPPED_DIR, ConfigError, resolve_relative

__all__ = ["AGENT_CONFIGS", "RULES", "SCENARIOS", "SHIPPED_DIR", "ConfigError", "display", "find",
           "resolve_relative", "shipped", "shipped_names"]

AGENT_CONFIGS = ""  # folder names under SHIPPED_DIR, one per kind of file
RULES = "rules"
SCENARIOS = "scenarios"
_KIND = {AGENT_CONFIGS: "agent config", RULES: "rules file", SCENARIOS: "scenario"}


def shipped_names(folder: str) -> list[str]:
    """Names (without `.yaml`) of the shipped files of one kind, sorted."""
    return sorted(p.stem for p in (SHIPPED_DIR / folder).glob("*.yaml"))


def shipped(name: str, folder: str = AGENT_CONFIGS) -> Path:
    """The shipped file `folder/name` (`.yaml` optional); `ConfigError` listing the choices if none."""
    found = _shipped_or_none(Path(name), folder)
    if found is None:
        raise ConfigError(_not_found(name, folder))
    return found


def find(value: str | Path, folder: str = AGENT_CONFIGS) -> Path:
    """A user's file by path, else a shipped file by name. Raises `ConfigError` saying what exists.

    `find("my.yaml", RULES)` is `./my.yaml` when that exists; `find("follow", RULES)` and
    `find("rules/follow.yaml", RULES)` are the shipped `rules/follow.yaml`.
    """
    path = Path(value).expanduser()
    if path.is_file():
        return path.resolve()
    found = _shipped_or_none(path, folder)
    if found is not None:  # also when a folder of that name is here (`agent` in a checkout)
        return found
    if path.exists():
        raise ConfigError(f"{value}: is not a file")
    raise ConfigError(_not_found(str(value), folder))


def display(path: Path) -> str:
    """How to show a config path: shipped files by their name, never this machine's site-packages."""
    try:
        return f"{path.resolve().relative_to(SHIPPED_DIR)} (shipped)"
    except ValueError:
        return str(path)


def _shipped_or_none(path: Path, folder: str) -> Path | None:
    if path.is_absolute():
        return None
    parts = path.parts
    if folder and parts and parts[0] == folder:  # `rules/follow.yaml` with folder `rules`
        path = Path(*parts[1:]) if len(parts) > 1 else Path()
    candidates = [SHIPPED_DIR / folder / path]
    if path.suffix != ".yaml":
        candidates.append(SHIPPED_DIR / folder / f"{path}.yaml")
    for candidate in candidates:
        resolved = candidate.resolve()
        if resolved.is_file() and resolved.is_relative_to(SHIPPED_DIR):
            return resolved
    return None


def _not_found(value: str, folder: str) -> str:
    names = ", ".join(shipped_names(folder)) or "none"
    return f"{value}: no such file, and no shipped {_KIND[folder]} of that name (shipped: {names})"
