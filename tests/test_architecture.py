"""The shape of the engine's imports, read from the source (ast; nothing is imported).

Every ``import``/``from ... import`` of a mailgate module counts, wherever it stands: at
module level, inside a function, or under ``if TYPE_CHECKING:`` (two modules that name
each other's types are as tied as two that call each other).  ``from package import
name`` is an edge to the submodule ``package.name`` when there is one, else to the
package; importing a submodule is not counted as importing its parent packages.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

ENGINE = Path(__file__).resolve().parent.parent / "engine"

# The configuration's module table is one cycle by design: the loader reads the
# directive tables of config.modules, whose directives are built on config.registry,
# whose Call refers back to the Loader.
CONFIG_TABLE = frozenset({
    "mailgate.config.loader", "mailgate.config.registry", "mailgate.config.modules"})


def _modules() -> dict[str, tuple[Path, bool]]:
    """Every module of the mailgate package: dotted name -> (file, is a package)."""
    modules = {}
    for path in sorted((ENGINE / "mailgate").rglob("*.py")):
        parts = list(path.relative_to(ENGINE).with_suffix("").parts)
        package = parts[-1] == "__init__"
        if package:
            parts.pop()
        modules[".".join(parts)] = (path, package)
    return modules


@functools.cache
def import_graph() -> dict[str, frozenset[str]]:
    """Module -> the mailgate modules it imports."""
    modules = _modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, (path, package) in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parent = name.split(".") if package else name.split(".")[:-1]
                    parent = parent[: len(parent) - node.level + 1]
                    base = ".".join(parent + ([base] if base else []))
                targets = [base + "." + alias.name if base + "." + alias.name in modules
                           else base for alias in node.names]
            else:
                continue
            graph[name].update(t for t in targets if t in modules and t != name)
    return {name: frozenset(imported) for name, imported in graph.items()}


def cycles(graph: dict[str, frozenset[str]]) -> list[frozenset[str]]:
    """The strongly connected components of more than one module (Tarjan): every import
    cycle lies within one of them."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(graph[node]):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(frozenset(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _in_config_table(module: str) -> bool:
    return module in CONFIG_TABLE or module.startswith("mailgate.config.modules.")


def test_the_graph_is_read():
    graph = import_graph()
    assert len(graph) > 50
    assert "mailgate.inet" in graph["mailgate.proxy.realip"]
    # a function-level import and a TYPE_CHECKING one count
    assert "mailgate.config.modules" in graph["mailgate.config.loader"]
    assert "mailgate.config.loader" in graph["mailgate.config.registry"]
    # "from mailgate.config.modules import mail_core" is an edge to the submodule
    assert "mailgate.config.modules.mail_core" in graph["mailgate.config.modules"]


def test_no_import_cycle_but_the_config_module_table():
    unexpected = [sorted(c) for c in cycles(import_graph())
                  if not all(_in_config_table(m) for m in c)]
    assert unexpected == []


def test_inet_imports_nothing_of_mailgate():
    # the configuration, the protocol machines and the proxy all build on it
    assert import_graph()["mailgate.inet"] == frozenset()


def test_address_modules_depend_on_inet_not_on_each_other():
    graph = import_graph()
    assert "mailgate.proxy.realip" not in graph["mailgate.proxy.proxy_protocol"]
    assert "mailgate.proxy.proxy_protocol" not in graph["mailgate.proxy.realip"]
    for module in ("mailgate.proxy.realip", "mailgate.proxy.proxy_protocol",
                   "mailgate.proxy.resolver", "mailgate.config.addresses"):
        assert "mailgate.inet" in graph[module], module
