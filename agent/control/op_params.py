"""Behavior parameters on the operator's command line: `spot-agent op launch NAME key=value ...`
read into typed JSON values, and a behavior's parameters written back for `op behaviors`.
"""

from __future__ import annotations

from typing import Any


def parse_value(text: str) -> Any:
    """`true`/`false` -> bool, numbers -> int/float, `[...]` / `{...}` -> JSON, `null` -> None;
    anything else is text."""
    import json

    if text[:1] in ("[", "{"):
        try:
            return json.loads(text)
        except ValueError:
            raise ValueError(f"{text[:40]!r} looks like JSON but is not valid JSON") from None
    lowered = text.lower()
    if lowered in ("null", "none"):
        return None
    if lowered in ("true", "yes", "on"):
        return True
    if lowered in ("false", "no", "off"):
        return False
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        return text
    return value if value == value and value not in (float("inf"), float("-inf")) else text


def parse_params(items: list[str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"Parameters are key=value; {item!r} is not.")
        if key in params:
            raise ValueError(f"Parameter {key!r} is given twice.")
        params[key.strip()] = parse_value(value.strip())
    return params


def format_params(params: Any) -> str:
    if not params:
        return "-"
    if isinstance(params, dict):
        params = [{"name": k, **(v if isinstance(v, dict) else {"default": v})} for k, v in params.items()]
    parts = []
    for p in params:
        text = str(p.get("name", "?"))
        if p.get("type"):
            text += f": {p['type']}"
        if "default" in p and p["default"] is not None:
            text += f" = {p['default']}"
        elif p.get("required"):
            text += " (required)"
        parts.append(text)
    return ", ".join(parts)
