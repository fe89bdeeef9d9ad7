"""Code that never runs: a statement after `return`, `raise`, `continue` or `break` in the same block. In a
test it is an assertion that can never fail (one such block once hid the key-numbers checks of the saved
notebook); in the package it is dead code."""
import ast
from pathlib import Path

from conftest import ROOT


def unreachable(source: str) -> list[int]:
    """Line numbers of the statements that follow a jump in the same block."""
    found = []
    for node in ast.walk(ast.parse(source)):
        for field in ("body", "orelse", "finalbody", "handlers"):
            block = getattr(node, field, None)
            if not isinstance(block, list):
                continue
            for statement, following in zip(block, block[1:]):
                if isinstance(statement, (ast.Return, ast.Raise, ast.Continue, ast.Break)):
                    found.append(following.lineno)
    return found


def test_no_statement_follows_a_return_or_raise_in_the_package_tests_or_tools():
    files = [*(ROOT / "transitive").rglob("*.py"), *(ROOT / "tests").glob("*.py"), *(ROOT / "tools").glob("*.py")]
    assert len(files) > 60
    dead = [f"{path.relative_to(ROOT)}:{line}" for path in files for line in unreachable(path.read_text())]
    assert dead == []


def test_the_check_sees_an_assertion_after_a_return():
    source = "def helper(x):\n    return x\n    assert x > 0\n\n\ndef fine(x):\n    if x:\n        return 1\n    return 2\n"
    assert unreachable(source) == [3]
