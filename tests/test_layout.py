"""The code's shape, as a reviewer checks it (issue 16's "Done when"): no module over 500 lines (Python, the UI's
scripts, the C extensions' files), no import cycle (Python modules at import time, the UI's static ES modules),
the request-side packages free of SQL, DuckDB and engine probes, and runtime code that never imports the test
helpers."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PKG = SRC / "margay"
STATIC = PKG / "web" / "static"
MAX_LINES = 500
# Packages that reach a store only through the Backend protocol: they never import an engine's package (nor build
# one: app.py, the CLI and bench/ do, and hand it in) and never ask which one they hold.
ENGINE_FREE = ("api", "access", "forward", "retention")
ENGINES = ("margay.store.duckdb", "margay.store.opensearch")
SQL_START = re.compile(r"^\s*(SELECT|WITH|INSERT\s+INTO|COPY|CREATE\s+(TABLE|VIEW)|DELETE\s+FROM|UPDATE)\s", re.I)


def _modules() -> dict[str, tuple[Path, bool]]:
    out = {}
    for p in PKG.rglob("*.py"):
        parts = list(p.relative_to(SRC).with_suffix("").parts)
        pkg = parts[-1] == "__init__"
        out[".".join(parts[:-1] if pkg else parts)] = (p, pkg)
    return out


MODULES = _modules()


def _runtime_imports(body: list[ast.stmt]) -> list[ast.Import | ast.ImportFrom]:
    """The imports a module runs when it is imported: its top level, `if`/`try` blocks included, but not
    `if TYPE_CHECKING:` (never run) nor function bodies (run on call, after every module is loaded)."""
    out: list[ast.Import | ast.ImportFrom] = []
    for n in body:
        if isinstance(n, (ast.Import, ast.ImportFrom)):
            out.append(n)
        elif isinstance(n, ast.If):
            if "TYPE_CHECKING" not in ast.unparse(n.test):
                out += _runtime_imports(n.body)
            out += _runtime_imports(n.orelse)
        elif isinstance(n, ast.Try):
            for block in (n.body, n.orelse, n.finalbody, *(h.body for h in n.handlers)):
                out += _runtime_imports(block)
    return out


def _absolute(module: str, is_pkg: bool, node: ast.ImportFrom) -> str:
    """The module a `from ... import` names, its leading dots resolved against the importing module."""
    if not node.level:
        return node.module or ""
    base = module if is_pkg else module.rpartition(".")[0]
    for _ in range(node.level - 1):
        base = base.rpartition(".")[0]
    return f"{base}.{node.module}" if node.module else base


def _targets(module: str, is_pkg: bool, node: ast.Import | ast.ImportFrom) -> set[str]:
    """The margay modules an import statement names."""
    if isinstance(node, ast.Import):
        return {a.name for a in node.names if a.name in MODULES}
    target = _absolute(module, is_pkg, node)
    found = set()
    for a in node.names:
        if f"{target}.{a.name}" in MODULES:
            found.add(f"{target}.{a.name}")
        elif target in MODULES:
            found.add(target)
    return found


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []
    for root in edges:
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(edges.get(w, ())))))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    found.append(sorted(comp))
    return found


def test_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_python_module_is_over_500_lines() -> None:
    long = {str(p.relative_to(SRC)): n for p, _ in MODULES.values() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_no_c_file_is_over_500_lines() -> None:
    sources = sorted([*PKG.rglob("*.c"), *PKG.rglob("*.h")])
    assert any(p.suffix == ".h" for p in sources) and any(p.suffix == ".c" for p in sources), "the C files were not found"
    long = {str(p.relative_to(SRC)): n for p in sources if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"C files over {MAX_LINES} lines: {long}"


def test_no_ui_module_is_over_500_lines() -> None:
    scripts = sorted(STATIC.glob("*.js"))
    assert scripts, "the UI's modules were not found"
    long = {p.name: n for p in scripts if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"UI modules over {MAX_LINES} lines: {long}"


def test_no_python_import_cycle() -> None:
    edges = {m: set().union(*(_targets(m, pkg, n) for n in _runtime_imports(ast.parse(p.read_text()).body))) - {m}
             for m, (p, pkg) in MODULES.items()}
    assert sum(map(len, edges.values())) > 100, "the import graph came out nearly empty: the walk is broken"
    assert not _cycles(edges)


def test_no_ui_import_cycle() -> None:
    static_import = re.compile(r'^\s*(?:import|export)\b[^;]*?\bfrom\s+"\./([\w.-]+\.js)"', re.M)
    edges = {p.name: set(static_import.findall(p.read_text())) for p in STATIC.glob("*.js")}
    assert edges.get("app.js"), "app.js's imports were not found"
    assert not _cycles(edges)


@pytest.mark.parametrize("package", ENGINE_FREE)
def test_request_side_package_reaches_stores_only_through_the_protocol(package: str) -> None:
    problems = []
    for module, (path, _) in MODULES.items():
        if not module.startswith(f"margay.{package}.") and module != f"margay.{package}":
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            where = f"{path.relative_to(SRC)}:{getattr(node, 'lineno', '?')}"
            if isinstance(node, ast.Import) and any(a.name.split(".")[0] == "duckdb" for a in node.names):
                problems.append(f"{where} imports duckdb")
            elif isinstance(node, ast.ImportFrom) and not node.level and (node.module or "").split(".")[0] == "duckdb":
                problems.append(f"{where} imports duckdb")
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("isinstance", "hasattr"):
                text = ast.unparse(node)
                if re.search(r"Backend|backend|\bstore\b", text):
                    problems.append(f"{where} probes the engine: {text}")
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and SQL_START.match(node.value):
                problems.append(f"{where} holds SQL: {node.value[:40]!r}")
    assert not problems, "\n".join(problems)


def _engine_imports(module: str, is_pkg: bool, tree: ast.Module) -> list[str]:
    """Where a module imports an engine's package or a module of it: anywhere, function bodies and
    `if TYPE_CHECKING:` included, absolute or relative."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            target = _absolute(module, is_pkg, node)
            names = [target, *(f"{target}.{a.name}" for a in node.names)]
        else:
            continue
        hits = sorted({e for e in ENGINES for n in names if n == e or n.startswith(f"{e}.")})
        found += [f"{node.lineno}: {e}" for e in hits]
    return found


def test_engine_import_finder_finds_them() -> None:
    source = """
from ..store.duckdb.offline import OfflineStore
from ..store import opensearch
from ..store.backend import Backend
import margay.store.duckdb
from .duckdb import x

def later():
    from ..store.duckdb import DuckDBBackend
"""
    found = _engine_imports("margay.forward.status", False, ast.parse(source))
    assert found == ["2: margay.store.duckdb", "3: margay.store.opensearch", "5: margay.store.duckdb",
                     "9: margay.store.duckdb"]
    assert _engine_imports("margay.api", True, ast.parse("from ..store import duckdb")) == ["1: margay.store.duckdb"]
    assert _engine_imports("margay.api.x", False, ast.parse("from ..store.duckdb_notes import y")) == []


@pytest.mark.parametrize("package", ENGINE_FREE)
def test_request_side_package_never_imports_an_engine(package: str) -> None:
    found = []
    for module, (path, is_pkg) in MODULES.items():
        if module.startswith(f"margay.{package}.") or module == f"margay.{package}":
            found += [f"{path.relative_to(SRC)}:{hit}" for hit in _engine_imports(module, is_pkg, ast.parse(path.read_text()))]
    assert any(m.startswith(f"margay.{package}") for m in MODULES), f"margay.{package} was not found"
    assert not found, "\n".join(found)


def test_runtime_code_never_imports_the_test_helpers() -> None:
    found = []
    for module, (path, is_pkg) in MODULES.items():
        if module.startswith("margay.testing"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Import, ast.ImportFrom)) and any(
                    t.startswith("margay.testing") for t in _targets(module, is_pkg, node)):
                found.append(f"{path.relative_to(SRC)}:{node.lineno}")
    assert "margay.testing" in MODULES, "margay.testing was not found: the check would pass vacuously"
    assert not found, found
