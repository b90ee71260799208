"""No import cycle inside ``asfaload/``: the layers a reader sees are the layers that run.

Every ``import`` counts, at module level or inside a function (a function-level import that
closes a cycle only hides it); those under ``if TYPE_CHECKING:`` do not run and do not count.

Also: the library's core never imports ``asfaload.devtools`` (the tools of the demo, the tests and
the benchmarks; only the CLI's ``dev`` command does), and no test module imports another one
(shared test helpers live in ``tests/support/``, shared with the demo and the benchmarks in
``asfaload/devtools/``).
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "asfaload"


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _runtime_imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        deps: set[str] = set()
        for node in _runtime_imports(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = name.split(".") if is_package else name.split(".")[:-1]
                if node.level:
                    base = base[: len(base) - (node.level - 1)]
                    prefix = ".".join(base + ([node.module] if node.module else []))
                else:
                    prefix = node.module or ""
                # ``from pkg import sub`` depends on the submodule, else on the package
                targets = [
                    f"{prefix}.{a.name}" if f"{prefix}.{a.name}" in modules else prefix
                    for a in node.names
                ]
            deps |= {t for t in targets if t in modules and t != name}
        graph[name] = deps
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_import_cycle_inside_asfaload() -> None:
    graph = import_graph()
    assert len(graph) > 50 and graph["asfaload.server.app"], "the graph must see the package"
    assert cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def _imported_modules(path: Path) -> set[str]:
    """Every module named by an absolute import of ``path`` (runtime or not, any depth)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def test_the_core_never_imports_the_devtools() -> None:
    graph = import_graph()
    core = {m for m in graph if not m.startswith("asfaload.devtools")}
    assert {m for m in core if any(d.startswith("asfaload.devtools") for d in graph[m])} == set()
    # the CLI (package asfaload.cli, in cli/) only from its ``dev`` command
    users = {
        p.name
        for p in (REPO / "cli").rglob("*.py")
        if any(m.startswith("asfaload.devtools") for m in _imported_modules(p))
    }
    assert users <= {"dev.py"}, users


def test_no_test_module_imports_another() -> None:
    offenders = []
    for where in ("tests", "bench", "examples"):
        for path in sorted((REPO / where).rglob("*.py")):
            for module in _imported_modules(path):
                last = module.split(".")[-1]
                if module.startswith("tests.") and (
                    last.startswith("test_") or last.startswith("conftest")
                ):
                    offenders.append(f"{path.relative_to(REPO)} imports {module}")
    assert offenders == [], "import shared helpers from tests/support/ instead:\n" + "\n".join(
        offenders
    )
    helpers = [p.name for p in (REPO / "tests" / "support").glob("*.py")]
    assert helpers and not [n for n in helpers if n.startswith("test_")]
