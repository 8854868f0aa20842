"""Every row of docs/security.md has a test under tests/security named after it (test_rowN_...)."""

import ast
import re
from pathlib import Path

HERE = Path(__file__).resolve().parent
SECURITY_MD = HERE.parents[1] / "docs" / "security.md"
# The rows of the table in docs/security.md: a feature adds its row there with its tests.
ROWS = sorted(int(n) for n in re.findall(r"^\| (\d+) \|", SECURITY_MD.read_text(), re.MULTILINE))


def row_tests() -> dict[int, list[str]]:
    """Row number -> the test functions (module::name) under tests/security that prove it."""
    found: dict[int, list[str]] = {}
    for module in sorted(HERE.glob("test_*.py")):
        for node in ast.walk(ast.parse(module.read_text(), filename=str(module))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                match = re.match(r"test_row(\d+)_", node.name)
                if match:
                    found.setdefault(int(match.group(1)), []).append(f"{module.name}::{node.name}")
    return found


def test_every_security_row_has_a_test_named_after_it():
    found = row_tests()
    missing = [row for row in ROWS if row not in found]
    assert not missing, f"SECURITY.md rows without a test_rowN_ test in tests/security: {missing}"


def test_no_test_names_a_row_that_does_not_exist():
    assert set(row_tests()) <= set(ROWS)
