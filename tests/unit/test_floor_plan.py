"""The floor plan's size rules: small modules, short functions, a flow that reads as a story.

Import rules (layers, no cycles, who may import the dev tools) are `lint-imports`'s job, with
the contracts in pyproject.toml; complexity is ruff's (C901, PLR0913, PLR0915).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SOURCE_DIRS = ("catalog_images", "flows", "tasks", "bench", "data")
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def _sources() -> list[Path]:
    return sorted(p for d in SOURCE_DIRS for p in (REPO / d).rglob("*.py"))


def _functions(path: Path):
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield node


def long_modules(paths: list[Path], limit: int = MAX_MODULE_LINES, root: Path = REPO) -> list[str]:
    """Modules over ``limit`` lines, as 'path: N lines'."""
    found = []
    for path in paths:
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > limit:
            found.append(f"{path.relative_to(root)}: {lines} lines")
    return found


def long_functions(
    paths: list[Path], limit: int = MAX_FUNCTION_LINES, root: Path = REPO
) -> list[str]:
    """Functions over ``limit`` lines (def line to last line), as 'path:line name N lines'."""
    found = []
    for path in paths:
        for node in _functions(path):
            lines = node.end_lineno - node.lineno + 1
            if lines > limit:
                found.append(f"{path.relative_to(root)}:{node.lineno} {node.name}: {lines} lines")
    return found


def test_no_module_over_400_lines_outside_tests():
    assert long_modules(_sources()) == []


def test_no_function_over_60_lines_outside_tests():
    assert long_functions(_sources()) == []


def test_the_flows_are_short_stories():
    flows = [p for p in (REPO / "flows").glob("*.py") if p.name != "__init__.py"]
    assert flows, "no flow modules found"
    assert long_functions(flows, limit=60) == []


@pytest.mark.parametrize("limit, expected", [(3, 1), (5, 0)])
def test_the_size_checks_see_a_long_function(tmp_path, limit, expected):
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    a = 1\n    b = 2\n    return a + b\n")
    assert len(long_functions([sample], limit, root=tmp_path)) == expected
    assert len(long_modules([sample], limit, root=tmp_path)) == expected
