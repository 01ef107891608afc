"""Module boundaries of the package compot (issue 12): no import cycle, no library
module importing the command line, no module reaching for another's private names.

The imports are read from the source (``ast``), function-level imports included:
an import deferred into a function is still a dependency.
"""

import ast
from pathlib import Path

import compot

PACKAGE = Path(compot.__file__).resolve().parent


def _modules() -> dict:
    """{dotted module name: parsed source} of every module of compot."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = (ast.parse(path.read_text(encoding="utf-8"), str(path)), path.name == "__init__.py")
    return out


MODULES = _modules()


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    base = base[:len(base) - node.level + (1 if is_package else 0)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(name: str):
    """(imported module, imported names, line) of every compot import in a module."""
    tree, is_package = MODULES[name]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("compot"):
                    yield alias.name, [], node.lineno
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(name, is_package, node)
            if not target.startswith("compot"):
                continue
            names = [a.name for a in node.names]
            subs = [f"{target}.{n}" for n in names if f"{target}.{n}" in MODULES]
            yield target, [n for n in names if f"{target}.{n}" not in MODULES], node.lineno
            for sub in subs:
                yield sub, [], node.lineno


def _graph() -> dict:
    return {name: {t for t, _, _ in _imports(name) if t in MODULES and t != name} for name in MODULES}


def _parents(name: str) -> set:
    """Packages whose ``__init__`` runs when ``name`` is imported (compot itself excluded)."""
    parts = name.split(".")
    return {".".join(parts[:k]) for k in range(2, len(parts))}


def test_there_is_no_import_cycle():
    graph = _graph()
    for name in graph:                       # importing a module runs its packages' __init__
        graph[name] |= {p for p in _parents(name) if p in MODULES and p != name}
    state, cycles = {}, []

    def visit(node, stack):
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    # a package's __init__ importing its own submodules is no cycle
    cycles = [c for c in cycles if not all(c[0].startswith(x) or x.startswith(c[0]) for x in c)]
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_no_library_module_imports_the_command_line():
    bad = [f"{name}:{line}" for name in MODULES if name != "compot.cli"
           for target, _, line in _imports(name) if target == "compot.cli"]
    assert not bad, f"library modules importing compot.cli: {bad}"


def test_no_module_imports_another_modules_private_names():
    bad = []
    for name in MODULES:
        for target, names, line in _imports(name):
            private = [n for n in names if n.startswith("_") and not n.startswith("__")]
            if private and target != name:
                bad.append(f"{name}:{line} imports {', '.join(private)} from {target}")
        tree, _ = MODULES[name]
        aliases = {a.asname or a.name.split(".")[-1]
                   for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))
                   for a in node.names
                   if isinstance(node, ast.ImportFrom) and f"{_resolve(name, MODULES[name][1], node)}.{a.name}"
                   in MODULES}
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases
                    and node.attr.startswith("_") and not node.attr.startswith("__")):
                bad.append(f"{name}:{node.lineno} uses {node.value.id}.{node.attr}")
    assert not bad, "private names used across modules: " + "; ".join(bad)


def test_the_checks_see_the_package():
    assert {"compot.cli", "compot.settings", "compot.pipeline", "compot.plots", "compot.data.weighted",
            "compot.data.anchors"} <= set(MODULES)
    assert "compot.settings" in _graph()["compot.config"]
