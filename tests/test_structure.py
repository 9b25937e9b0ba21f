"""The package's shape (DESIGN.md): no import cycle between modules, no module over about 500 lines,
nothing that manages servers shipped in the wheel, the version from package metadata."""

from __future__ import annotations

import ast
import importlib.metadata
from pathlib import Path

import adaptive

SRC = Path(adaptive.__file__).resolve().parent
MAX_LINES = 520


def _module_name(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path, name: str) -> set[str]:
    """Modules of the package that ``path`` imports anywhere (in functions too: a deferred import is still a
    dependency), except under ``if TYPE_CHECKING:``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()

    def visit(nodes):
        for node in nodes:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                visit(node.orelse)
                continue
            if isinstance(node, ast.Import):
                out.update(a.name for a in node.names if a.name.startswith("adaptive"))
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")
                    base = base[: len(base) - node.level + 1]
                    mod = ".".join(base + ([node.module] if node.module else []))
                else:
                    mod = node.module or ""
                if not mod.startswith("adaptive"):
                    continue
                out.add(mod)
                for a in node.names:  # "from . import selection" imports a submodule
                    if (SRC.parent / (mod.replace(".", "/") + "/" + a.name + ".py")).exists() or \
                            (SRC.parent / (mod.replace(".", "/") + "/" + a.name)).is_dir():
                        out.add(f"{mod}.{a.name}")
            else:
                visit(ast.iter_child_nodes(node))

    visit(tree.body)
    return out


def _graph() -> dict[str, set[str]]:
    files = {_module_name(p): p for p in SRC.rglob("*.py")}
    graph = {}
    for name, path in files.items():
        deps = set()
        for mod in _imports(path, name):
            while mod and mod not in files:  # "from .bank import X" where X is not a module
                mod = mod.rpartition(".")[0]
            if mod and mod != name:
                deps.add(mod)
        graph[name] = deps
    return graph


def _cycles(graph):
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            strong(v)
    return out


def _ignoring_package_inits(graph):
    """Edges into a package's ``__init__`` from its own submodules are how Python loads packages, not cycles
    of our making; edges from an ``__init__`` to its submodules are re-exports. Drop both kinds."""
    out = {}
    for v, deps in graph.items():
        keep = set()
        for w in deps:
            if v.startswith(w + ".") or w.startswith(v + "."):
                continue
            keep.add(w)
        out[v] = keep
    return out


def test_no_import_cycles_between_modules():
    cycles = _cycles(_ignoring_package_inits(_graph()))
    assert cycles == [], cycles


def test_no_module_is_over_about_500_lines():
    sizes = {p.relative_to(SRC).as_posix(): len(p.read_text(encoding="utf-8").splitlines()) for p in SRC.rglob("*.py")}
    big = {k: v for k, v in sizes.items() if v > MAX_LINES}
    assert big == {}, big


def test_version_comes_from_the_package_metadata():
    assert adaptive.__version__ == importlib.metadata.version("adaptive-cat")
