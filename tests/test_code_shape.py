"""The shape the codebase promises (README, "Where a frame goes"): layers only point down, no
import cycles, small modules and functions. Checked on the source, so a change that breaks the
shape fails here with the offending import or function named.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("configs", "perception", "behaviors", "sim", "agent", "deploy")

# What each layer may import from the project (besides itself). Lower layers never import upper.
ALLOWED: dict[str, tuple[str, ...]] = {
    "configs": (),
    "perception": ("configs",),
    "behaviors": ("configs", "perception"),
    "sim": ("configs", "perception"),
    "agent.core": ("configs", "perception", "behaviors"),
    "agent.spot": ("configs", "perception", "behaviors", "agent.core"),
    "agent.recording": ("configs", "perception", "behaviors", "agent.core"),
    "agent.replay": ("configs", "perception", "behaviors", "agent.core", "agent.recording",
                     "agent.config"),
    "agent.control": ("configs", "perception", "behaviors", "agent.core", "agent.recording"),
    # Many replays (and eval's images) in parallel: on a process pool or a Ray cluster.
    "agent.fleet": ("configs", "perception", "behaviors", "agent.core", "agent.recording",
                    "agent.replay", "agent.config"),
    # `spot-agent eval` reads the agent config and its rules, and records the models' sha256s.
    "agent.eval": ("configs", "perception", "behaviors", "agent.config", "agent.recording",
                   "agent.fleet"),
    # The NCB worker serves perception and registers with a robot through the Spot adapter.
    "agent.ncb": ("configs", "perception", "agent.core", "agent.spot"),
    # The application (config, run, demo, logs, ...) composes every agent layer; `agent.cli` is
    # the composition root of the command line and may register every package's commands.
    "agent": ("configs", "perception", "behaviors", "sim", "agent"),
    "agent.cli": PACKAGES,
    "deploy": ("configs", "agent"),
}
MAX_FILE_LINES = 450
MAX_FUNCTION_LINES = 60  # body lines; a typer command's option list is its signature, not its body


def _modules() -> dict[str, Path]:
    out = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            out[name] = path
    return out


MODULES = _modules()


def _imports(path: Path, module: str) -> set[str]:
    """Project modules `module` imports, anywhere in the file (function-level imports count)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import
                base = ".".join(module.split(".")[: -node.level] + ([base] if base else []))
            names = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            while name and name not in MODULES:
                name = name.rpartition(".")[0]
            if name and name.split(".")[0] in PACKAGES:
                found.add(name)
    found.discard(module)
    return found


GRAPH = {module: _imports(path, module) for module, path in MODULES.items()}


def _layer(module: str) -> str:
    """The most specific layer in ALLOWED that `module` belongs to."""
    best = ""
    for layer in ALLOWED:
        if (module == layer or module.startswith(layer + ".")) and len(layer) > len(best):
            best = layer
    return best


def _within(module: str, layer: str) -> bool:
    return module == layer or module.startswith(layer + ".")


def test_layers_only_point_down() -> None:
    wrong = []
    for module, imported in GRAPH.items():
        layer = _layer(module)
        allowed = (layer, *ALLOWED[layer])
        for target in sorted(imported):
            if not any(_within(target, a) for a in allowed):
                wrong.append(f"{module} imports {target} (layer {layer} may use: {', '.join(allowed)})")
    assert not wrong, "\n".join(wrong)


def test_no_import_cycles() -> None:
    # Tarjan's strongly connected components over the module graph.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in GRAPH.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            # A package's __init__ importing its own submodules is not a cycle worth naming.
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in sorted(GRAPH):
        if module not in index:
            visit(module)
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def _body_lines(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    first = node.body[0]
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and len(node.body) > 1:
        first = node.body[1]  # the docstring is documentation, not body
    return node.end_lineno - first.lineno + 1 if node.end_lineno else 0


def test_modules_and_functions_stay_small() -> None:
    big = []
    for path in MODULES.values():
        lines = path.read_text().count("\n")
        if lines > MAX_FILE_LINES:
            big.append(f"{path.relative_to(ROOT)}: {lines} lines (max {MAX_FILE_LINES})")
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = _body_lines(node)
                if n > MAX_FUNCTION_LINES:
                    big.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}(): {n} body lines "
                               f"(max {MAX_FUNCTION_LINES})")
    assert not big, "\n".join(big)


def test_every_layer_is_checked() -> None:
    unknown = [m for m in MODULES if not _layer(m)]
    assert not unknown, unknown
