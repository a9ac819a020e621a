"""The layout's promises, checked on the source: no import cycle anywhere (imports inside
functions included), and the science core imports no server at module level."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("mephisto_sed", "services", "gateway")


def _modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for f in (ROOT / pkg).rglob("*.py"):
            if "_pb2" in f.name:
                continue
            parts = f.relative_to(ROOT).with_suffix("").parts
            out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = f
    return out


def _imports(name: str, path: Path, modules: dict[str, Path], top_level_only: bool) -> set[str]:
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
                package = package[: len(package) - (node.level - 1)]
                base = ".".join(package + ([base] if base else []))
            found.add(base)
            found |= {f"{base}.{a.name}" for a in node.names}
    return {m for m in found if m in modules and m != name}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_no_import_cycle_anywhere():
    modules = _modules()
    graph = {m: _imports(m, p, modules, top_level_only=False) for m, p in modules.items()}
    assert _cycles(graph) == []


def test_the_core_imports_no_server_at_module_level():
    modules = _modules()
    for name, path in modules.items():
        if name.startswith("mephisto_sed"):
            servers = {m for m in _imports(name, path, modules, True) if m.startswith(("services", "gateway"))}
            assert not servers, (name, servers)


def test_the_cycle_finder_finds_cycles():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_settings_are_read_in_one_place():
    """Every MEPHISTO_*, NATS_*, QDRANT_* and OPENAI_* variable is read by mephisto_sed/settings.py
    (the core) or services/common/settings.py (the platform); other modules only pass the
    environment on to child processes or set library defaults."""
    import re

    read = re.compile(r"""os\.environ(?:\.get\(|\[)\s*f?["'](MEPHISTO_|NATS_|QDRANT_|OPENAI_)""")
    homes = {"mephisto_sed.settings", "services.common.settings"}
    for name, path in _modules().items():
        if name in homes:
            continue
        hits = [i + 1 for i, line in enumerate(path.read_text().splitlines()) if read.search(line)]
        assert not hits, (name, hits)
