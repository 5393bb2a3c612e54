"""The project's modules import one another without a cycle, and in the directions the
architecture allows (ARCHITECTURE.md section 1). Every import statement counts, those inside
functions too; only `if TYPE_CHECKING:` blocks (annotations) are left out."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
PACKAGES = ("sim", "models", "data", "agents", "deploy", "kinema", "benchmarks", "analysis")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")
           if not any(part.startswith(".") for part in p.relative_to(ROOT).parts)}
"""The project's modules; hidden folders (a benchmark's peer virtualenv in benchmarks/.venvs,
say) hold no project module."""


def _is_type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING")


def _imports(module: str) -> set[str]:
    """The project modules `module` imports anywhere but under `if TYPE_CHECKING:`."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for a in node.names:  # `from pkg import mod` imports the module pkg.mod
                sub = f"{node.module}.{a.name}"
                found.add(sub if sub in MODULES else node.module)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(MODULES[module].read_text()))
    return {m for m in found if m in MODULES and m != module}


GRAPH = {m: _imports(m) for m in MODULES}


def _cycle() -> list[str] | None:
    """One import cycle as a list of modules, or None (iterative DFS with colours)."""
    colour = dict.fromkeys(GRAPH, 0)  # 0 new, 1 on the stack, 2 done
    for start in sorted(GRAPH):
        if colour[start]:
            continue
        stack = [(start, iter(sorted(GRAPH[start])))]
        path = [start]
        colour[start] = 1
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                colour[node] = 2
                stack.pop()
                path.pop()
            elif colour[nxt] == 1:
                return path[path.index(nxt):] + [nxt]
            elif colour[nxt] == 0:
                colour[nxt] = 1
                stack.append((nxt, iter(sorted(GRAPH[nxt]))))
                path.append(nxt)
    return None


def test_the_graph_sees_the_project():
    assert len(MODULES) > 80
    assert "agents.loops.core" in GRAPH["agents.loops.on_policy"]
    assert "agents.runs.train" in GRAPH["agents.experts.base"]  # imported inside a function


def test_no_import_cycle():
    assert _cycle() is None, " -> ".join(_cycle() or [])


def _reaches(src_prefix: str, dst_prefix: str) -> list[str]:
    return sorted(f"{m} -> {d}" for m, deps in GRAPH.items() if _within(m, src_prefix)
                  for d in deps if _within(d, dst_prefix))


def _within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


@pytest.mark.parametrize("src, dst", [
    ("models", "agents"), ("models", "data"), ("models", "sim"), ("models", "deploy"),
    ("sim", "agents"), ("sim", "models"), ("sim", "data"), ("data", "agents"),
    ("data", "models"), ("agents", "kinema"), ("agents", "deploy"), ("deploy", "agents"),
    ("deploy", "kinema"), ("agents.runs", "agents.experts"), ("agents.protocol", "agents.loops"),
    ("agents.loops", "agents.model_free"), ("agents.registry", "agents.model_free"),
    # analysis reads run folders as files: no training stack, so report and plot stay light
    ("analysis", "agents"), ("analysis", "models"), ("analysis", "sim"), ("analysis", "deploy"),
    ("analysis", "kinema"), ("analysis", "benchmarks"), ("agents", "analysis"),
])
def test_imports_flow_one_way(src, dst):
    assert _reaches(src, dst) == []
