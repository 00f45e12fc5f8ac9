"""The package's structure: no import cycles (function-local imports included), and the runtime
never imports the training toolchain."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("scoreoracle", "solvers")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set:
    """Project modules imported anywhere in a file (module level or inside functions)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            candidates = [target] + [f"{target}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        else:
            continue
        found |= {c for c in candidates if c.split(".")[0] in PACKAGES}
    return found


def graph() -> dict:
    files = [p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")]
    modules = {module_name(p): p for p in files}
    edges = {}
    for name, path in modules.items():
        targets = set()
        for target in imports(path):
            while target and target not in modules:  # from pkg import name: the module is pkg
                target = target.rsplit(".", 1)[0] if "." in target else ""
            if target and target != name and not name.startswith(target + "."):  # a package's own __init__
                targets.add(target)
        edges[name] = targets
    return edges


def test_no_import_cycles():
    edges = graph()
    state = {}

    def visit(node, stack):
        state[node] = "open"
        for nxt in edges.get(node, ()):
            if state.get(nxt) == "open":
                cycle = stack[stack.index(nxt):] + [nxt]
                raise AssertionError("import cycle: " + " → ".join(cycle))
            if nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = "done"
    for node in edges:
        if node not in state:
            visit(node, [node])


def test_runtime_does_not_import_the_training_toolchain():
    edges = graph()
    runtime = [m for m in edges if m.startswith("scoreoracle") and not m.startswith("scoreoracle.training")
               and m != "scoreoracle.__main__"]  # `python -m scoreoracle` is the command line
    offenders = {m: sorted(t for t in edges[m] if t.startswith("scoreoracle.training")) for m in runtime}
    assert not any(offenders.values()), offenders
