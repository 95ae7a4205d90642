"""Package structure: module-level imports point one way (no cycles), and `import pymitml` leaves
the heavy optional libraries unimported."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "pymitml"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(module: str, is_pkg: bool, node: ast.ImportFrom) -> list[str]:
    if node.level == 0:
        base = node.module or ""
    else:
        parts = module.split(".")
        parts = parts if is_pkg else parts[:-1]
        parts = parts[: len(parts) - (node.level - 1)]
        base = ".".join(parts + ([node.module] if node.module else []))
    out = [base]
    out += [f"{base}.{a.name}" for a in node.names]  # "from . import io" imports pymitml.io
    return out


def module_graph() -> dict[str, set[str]]:
    """pymitml module -> pymitml modules it imports at module level (not in functions, not
    under TYPE_CHECKING); a package's __init__ is left out of its submodules' edges."""
    files = {_module_name(p): p for p in PKG.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for mod, path in files.items():
        tree = ast.parse(path.read_text())
        deps: set[str] = set()
        for node in tree.body:
            if isinstance(node, ast.If):  # `if TYPE_CHECKING:` blocks do not run
                continue
            if isinstance(node, ast.Import):
                deps.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                deps.update(_resolve(mod, path.name == "__init__.py", node))
        graph[mod] = {d for d in deps if d in files and d != mod}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    found, state, stack = [], {}, []

    def visit(n: str) -> None:
        state[n] = 1
        stack.append(n)
        for d in sorted(graph.get(n, ())):
            if state.get(d) == 1:
                found.append(stack[stack.index(d) :] + [d])
            elif d not in state:
                visit(d)
        stack.pop()
        state[n] = 2

    for n in sorted(graph):
        if n not in state:
            visit(n)
    return found


def test_no_import_cycles_between_modules():
    graph = module_graph()
    # a package importing its own submodules is not a cycle; a submodule importing an ancestor
    # package's __init__ would be
    for mod in graph:
        graph[mod] = {d for d in graph[mod] if not d.startswith(mod + ".")}
    assert _cycles(graph) == []


def test_core_does_not_import_io_or_bridge():
    graph = module_graph()
    for core in (
        "pymitml.mitml_list",
        "pymitml.result",
        "pymitml._frame",
        "pymitml.pool",
        "pymitml.pool.estimates",
        "pymitml.lmm.fit",
    ):
        leaves = {d for d in graph[core] if d.startswith(("pymitml.io", "pymitml.bridge"))}
        assert not leaves, (core, leaves)


def test_import_pymitml_leaves_heavy_libraries_unimported():
    heavy = [
        "numba",
        "scipy.optimize",
        "scipy.stats",
        "matplotlib",
        "polars",
        "rpy2",
        "statsmodels",
        "pyreadstat",
        "formulaic",
        "pymitml.samplers",
        "pymitml.lmm",
    ]
    code = f"import sys, pymitml; print([m for m in {heavy!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_lazy_public_names_resolve():
    import pymitml as pm

    assert callable(pm.pan_impute) and callable(pm.jomo_impute) and callable(pm.lmer)
    assert pm.LmerFit.__name__ == "LmerFit" and hasattr(pm.bridge, "to_r")
    assert {"pan_impute", "lmer", "register_model"} <= set(dir(pm))
    assert all(hasattr(pm, name) for name in pm.__all__)
