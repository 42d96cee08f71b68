"""The code's import graph: no cycles, no private name imported from another module, and what each handler
imports at init.

Reads every first-party Python file as text (ast), including imports made inside functions, so a cycle
hidden behind a function-level import counts too.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE_ROOT = ROOT / "layers" / "common" / "python"
# (directory, the import root its modules are named from)
CODE = [
    (PACKAGE_ROOT / "batch_dispatch", PACKAGE_ROOT),
    (ROOT / "emulator", ROOT),
    (ROOT / "bench", ROOT),
    (ROOT / "functions", ROOT),
    (ROOT / "scripts", ROOT),
]
TESTS = (ROOT / "tests", ROOT)


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules(places: list[tuple[Path, Path]]) -> dict[str, Path]:
    return {
        module_name(path, root): path
        for directory, root in places
        if directory.exists()
        for path in sorted(directory.rglob("*.py"))
    }


def imports(path: Path, name: str) -> list[tuple[str, list[str]]]:
    """(imported module, names taken from it) for every import statement in the file."""
    found: list[tuple[str, list[str]]] = []
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.extend((alias.name, []) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.append((base, [alias.name for alias in node.names]))
    return found


def edges(known: dict[str, Path]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {name: set() for name in known}
    for name, path in known.items():
        for target, names in imports(path, name):
            for candidate in [f"{target}.{n}" for n in names] or [target]:
                resolved = candidate if candidate in known else target if target in known else None
                if resolved and resolved != name:
                    graph[name].add(resolved)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
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

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycles_in_the_package_the_emulator_or_the_benchmarks():
    assert cycles(edges(modules(CODE))) == []


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_private_name_is_imported_from_another_module():
    known = modules([*CODE, TESTS])
    offenders = [
        f"{name} imports {target}.{imported}"
        for name, path in known.items()
        for target, names in imports(path, name)
        if target.split(".")[0] in {"batch_dispatch", "emulator", "bench", "functions", "scripts", "tests"}
        for imported in names
        if imported.startswith("_") and not imported.startswith("__")
    ]
    assert offenders == []


def top_level_imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module != "__future__":
            found.append(node.module)
    return found


def test_every_handler_imports_boto3_before_the_modules_that_use_it():
    # Imported deep in the package's import chain, boto3's regex compiles straddle a CPython data-stack
    # chunk and cost thousands of mmap/munmap calls per cold start (docs/benchmarks.md, import depth).
    late = []
    for app in sorted((ROOT / "functions").glob("*/app.py")):
        found = top_level_imports(app)
        first_user = next(
            i
            for i, name in enumerate(found)
            if name.split(".")[0] in {"aws_lambda_powertools", "batch_dispatch"}
        )
        if "boto3" not in found[:first_user]:
            late.append(app.parent.name)
    assert late == []


# Imported by no handler at init: each is an optional cost (docs/benchmarks.md, cold start): zoneinfo
# (with its sysconfig read) only for cron and at() schedules, the X-Ray SDK only with TraceAwsCalls,
# and pydantic and slack_sdk not at all.
NOT_AT_INIT = ("zoneinfo", "aws_xray_sdk", "pydantic", "slack_sdk")


def test_no_handler_imports_at_init_what_its_cold_start_does_not_need():
    probe = (
        "import sys, json; sys.path[:0] = sys.argv[1:3]; import app; "
        f"print(json.dumps(sorted(m for m in {NOT_AT_INIT!r} if m in sys.modules)))"
    )
    env = {"PATH": os.environ.get("PATH", ""), "AWS_DEFAULT_REGION": "us-east-1"}
    env |= {"POWERTOOLS_TRACE_DISABLED": "true"}  # the template's default (TraceAwsCalls off)
    found = {}
    for app in sorted((ROOT / "functions").glob("*/app.py")):
        completed = subprocess.run(  # noqa: S603 - our interpreter, our handlers
            [sys.executable, "-I", "-c", probe, str(app.parent), str(PACKAGE_ROOT)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        found[app.parent.name] = json.loads(completed.stdout)
    assert found == {name: [] for name in found}
    assert len(found) >= 6
