"""The rooms' import rules of docs/architecture.md, checked on every module of the product.

The table in docs/architecture.md ("Rooms") is the rule; this test parses it, so changing a
rule means changing the document. It fails on an import a room may not make, on an import cycle
between modules, and on a folder of product code the table does not list.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOT_PRODUCT = {"tests", "benchmarks", "models", "var", "data", "docs", "requirements"}


def rules() -> dict[str, set[str]]:
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    section = text[text.index("## Rooms"):]
    section = section[: section.index("\n## ", 3)]
    found: dict[str, set[str]] = {}
    for line in section.splitlines():
        match = re.match(r"\|\s*`(\w+)/`\s*\|[^|]*\|\s*([^|]*)\|\s*$", line)
        if match:
            allowed = {name.strip() for name in match.group(2).split(",") if name.strip() not in ("", "—", "-")}
            found[match.group(1)] = allowed
    assert found, "docs/architecture.md lost its Rooms table"
    return found


def product_modules() -> dict[str, Path]:
    modules: dict[str, Path] = {}
    for folder in ROOT.iterdir():
        if not folder.is_dir() or folder.name.startswith(".") or folder.name in NOT_PRODUCT:
            continue
        for path in folder.rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def imports_of(path: Path, known: set[str]) -> set[str]:
    """Modules of the product this file imports, at any depth of the file (lazy imports count)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name:
                found.add(name)
    return found


def graph() -> dict[str, set[str]]:
    modules = product_modules()
    known = set(modules)
    return {name: imports_of(path, known) - {name} for name, path in modules.items()}


def test_every_product_folder_is_a_room_of_the_table() -> None:
    rooms = rules()
    folders = {name.split(".")[0] for name in product_modules()}
    assert folders <= set(rooms), f"folders of Python code missing from docs/architecture.md: {sorted(folders - set(rooms))}"


def test_rooms_import_only_what_the_table_allows() -> None:
    rooms = rules()
    broken = []
    for module, targets in graph().items():
        room = module.split(".")[0]
        for target in targets:
            other = target.split(".")[0]
            if other != room and other not in rooms.get(room, set()):
                broken.append(f"{module} imports {target} ({room} may import: {', '.join(sorted(rooms.get(room, ()))) or 'nothing'})")
    assert not broken, "imports against docs/architecture.md:\n" + "\n".join(sorted(broken))


def test_no_import_cycles() -> None:
    edges = graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in edges.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in edges:
        if node not in index:
            visit(node)
    assert not cycles, f"import cycles: {cycles}"


def test_the_rule_catches_a_broken_import(tmp_path: Path) -> None:
    """The check itself can fail: core importing a feature room is reported."""
    probe = tmp_path / "probe.py"
    probe.write_text("from handoff.queue import CaseQueue\n", encoding="utf-8")
    assert imports_of(probe, set(product_modules())) == {"handoff.queue"}
    assert "handoff" not in rules()["core"]
