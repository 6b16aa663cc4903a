"""The package's import graph: no cycles, and imports inside functions only at the seams.

A cycle (the history store, its backups and its export once formed one) means no module of it
can be understood or replaced alone. A function-level import hides a dependency; it is kept
for the start-up seams, where it defers what the first paint does not need, or picks a backend.
"""

from __future__ import annotations

import ast
from pathlib import Path

import cactus_desk

PACKAGE = Path(cactus_desk.__file__).resolve().parent

#: Modules whose functions may import other cactus_desk modules, and why.
SEAMS = {
    "cactus_desk.app": "composition root of the window",
    "cactus_desk.cli": "entry point: a window start never loads the command line",
    "cactus_desk.commands": "each command loads only what it uses",
    "cactus_desk.payout_command": "the payout command loads only what it uses",
    "cactus_desk.team_command": "the team command loads only what it uses",
    "cactus_desk.approvals_command": "the approvals command loads only what it uses",
    "cactus_desk.team_approvals_command": "the policy and audit commands load what they use",
    "cactus_desk.batch_command": "the batch command loads only what it uses",
    "cactus_desk.payouts.send": "the gateway client (httpx) loads on the first send, not at start",
    "cactus_desk.payouts.draft": "PayoutDraft (pydantic) loads when named, not for the checks",
    "cactus_desk.selftest": "composition root of the self-test",
    "cactus_desk.history": "picks the history adapter when one is opened",
    "cactus_desk.receiver.serve": "the receiver extra (uvicorn) is optional",
    "cactus_desk.sandbox.server": "the finalizer is loaded when a test or the window enables it",
}
UI = "cactus_desk.ui"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _graph() -> tuple[dict[str, set[str]], list[tuple[str, str]]]:
    modules = {_module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    lazy: list[tuple[str, str]] = []
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skipped: set[int] = set()
        in_function: set[int] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.dump(node.test):
                skipped.update(id(inner) for inner in ast.walk(node))
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                in_function.update(id(inner) for inner in ast.walk(node))
        for node in ast.walk(tree):
            if id(node) in skipped:
                continue
            if isinstance(node, ast.ImportFrom) and node.module:
                targets = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                continue
            for target in targets:
                if target in modules and target != name:
                    graph[name].add(target)
                    if id(node) in in_function:
                        lazy.append((name, target))
    return graph, lazy


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
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
            node, edges = work[-1]
            for nxt in edges:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
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


def test_the_import_graph_has_no_cycle() -> None:
    graph, _ = _graph()
    assert _cycles(graph) == []


def test_functions_import_modules_only_at_the_seams() -> None:
    _, lazy = _graph()
    offenders = [
        f"{module} -> {target}"
        for module, target in lazy
        if module not in SEAMS and module != UI and not module.startswith(UI + ".")
    ]
    assert offenders == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []
