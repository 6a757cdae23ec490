"""The configuration files that ship with spot-cue-agent, and how a name or a path finds one.

`configs/` is installed with the package (agent settings, cue rules, sim scenarios), so every
command has working defaults from any folder, with or without a checkout. A user's own file
always wins: a value that names an existing file is that file; otherwise it may name a shipped
file (`follow`, `rules/follow.yaml`, `sim.yaml`). Nothing here reaches up into the other
packages: every layer (perception, behaviors, sim, agent) may import it.
"""

from __future__ import annotations

from pathlib import Path

from configs.loading import ConfigError

SHIPPED_DIR = Path(__file__).resolve().parent
"""Where the shipped YAML files are (inside site-packages after a plain install)."""

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


def resolve_relative(value: Path, base_dir: Path) -> Path:
    """A path written inside a config file: relative to that file's folder, else to the shipped one.

    So a copy of `agent.yaml` in the user's own folder keeps `rules: rules/default.yaml`
    pointing at the shipped rules until the user puts a `rules/default.yaml` beside it.
    """
    if value.is_absolute():
        return value
    beside = (base_dir / value).resolve()
    if beside.exists():
        return beside
    shipped_path = (SHIPPED_DIR / value).resolve()
    return shipped_path if shipped_path.exists() else beside


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
