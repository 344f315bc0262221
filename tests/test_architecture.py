"""The package's structure: no import cycle, and no module outside an arm's own file tests an arm's name."""

import ast
import pathlib
import re

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "widthvsprune"


def module_name(path):
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules():
    return {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imports(path, names):
    """The package modules ``path`` imports, at any depth of its code."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name in names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("widthvsprune"):
            for alias in node.names:
                child = f"{node.module}.{alias.name}"
                out.add(child if child in names else node.module)
    return out


def test_no_module_imports_one_that_imports_it_back():
    found = modules()
    graph = {name: imports(path, found) - {name} for name, path in found.items()}
    cycles, state = [], {}

    def visit(name, stack):
        state[name] = "open"
        for child in sorted(graph[name]):
            if state.get(child) == "open":
                cycles.append(stack[stack.index(child):] + [child])
            elif child not in state:
                visit(child, stack + [child])
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert cycles == []


def test_only_an_arms_own_file_tests_an_arms_name():
    pattern = re.compile(r'arm ==|arm !=|== "narrow"|== "pruned"')
    found = [f"{p.relative_to(PACKAGE.parent)}:{i}" for p in PACKAGE.rglob("*.py") if "arms" not in p.parts
             for i, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert found == []


def package_of(module):
    """The part of the package a module belongs to: its subpackage (``widthvsprune.plan``), or itself when it is
    a module at the package's top level (``widthvsprune.data``)."""
    return ".".join(module.split(".")[:2])


def test_no_package_imports_one_that_imports_it_back():
    """Between the package's parts, arrows run one way: no loop such as plan -> arms -> plan."""
    found = modules()
    arrows = {}
    for name, path in found.items():
        for child in imports(path, found):
            a, b = package_of(name), package_of(child)
            if a != b and "widthvsprune" not in (a, b):
                arrows.setdefault(a, {}).setdefault(b, f"{name} -> {child}")

    def reaches(start, goal):
        seen, todo = set(), [start]
        while todo:
            for nxt in arrows.get(todo.pop(), {}):
                if nxt == goal:
                    return True
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return False

    loops = sorted(f"{a} -> {b} ({via}) and back" for a, targets in arrows.items() for b, via in targets.items()
                   if reaches(b, a))
    assert loops == []
