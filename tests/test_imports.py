"""The package's import graph: no module imports another that (directly or through others)
imports it back, and the concerns stay layered. Imports inside functions count too (a hidden
import only hides a loop); those under ``if TYPE_CHECKING:`` never run and do not."""

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).parents[1] / "src"
PACKAGE = SRC / "volcast"


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def runtime_imports(tree: ast.AST, modules: set[str]) -> set[str]:
    """volcast modules imported by a module's code, wherever the import statement sits."""
    found: set[str] = set()
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _type_checking(node):
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name in modules}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module in modules:
                found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names} & modules
        stack.extend(ast.iter_child_nodes(node))
    return found


def graph() -> dict[str, set[str]]:
    paths = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    modules = set(paths)
    return {name: runtime_imports(ast.parse(path.read_text()), modules) - {name}
            for name, path in paths.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(edges.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def concern(module: str) -> str:
    """volcast.models.lstm.train -> models; volcast.config -> config."""
    return module.split(".")[1] if "." in module else module


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_module_imports_itself_through_others():
    assert cycles(graph()) == []


def test_the_concerns_form_no_cycle_either():
    edges: dict[str, set[str]] = {}
    for module, targets in graph().items():
        edges.setdefault(concern(module), set()).update(
            concern(t) for t in targets if concern(t) != concern(module))
    assert cycles(edges) == []


@pytest.mark.parametrize(("low", "high"), [
    ("config", "data"), ("data", "models"), ("models", "evaluation"), ("data", "workspace"),
    ("models", "workspace"), ("evaluation", "workspace"), ("viz", "workspace"),
    ("workspace", "web"), ("workspace", "cli"), ("web", "cli"), ("data", "web"),
    ("data", "live"), ("models", "live"), ("workspace", "live"), ("live", "web"),
    ("live", "cli")])
def test_lower_layers_never_import_higher_ones(low, high):
    offending = sorted(f"{m} -> {t}" for m, targets in graph().items() if concern(m) == low
                       for t in targets if concern(t) == high)
    assert offending == []


def test_the_cli_imports_the_web_package_only_to_start_the_server():
    users = sorted(m for m, targets in graph().items() if concern(m) == "cli"
                   and any(concern(t) == "web" for t in targets))
    assert users == ["volcast.cli.web"]
    assert graph()["volcast.cli.web"] & {t for t in graph() if concern(t) == "web"} == {
        "volcast.web.app"}
