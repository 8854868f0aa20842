"""docs/security.md: the table of which tests prove each security row, from the test names."""

import ast
import re
import sys
from pathlib import Path

root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent
doc = root / "docs" / "security.md"
text = doc.read_text()
found = {}
for module in sorted((root / "tests" / "security").glob("test_*.py")):
    for node in ast.walk(ast.parse(module.read_text())):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            m = re.match(r"test_row(\d+)_", node.name)
            if m:
                found.setdefault(int(m.group(1)), []).append(f"`{module.name}::{node.name}`")
head = "\n## How each row is tested\n"
body = [
    "",
    "Every row has tests named after it under `tests/security/` (`test_rowN_...`);",
    "`tests/security/test_rows.py` fails when a row has none. Regenerate this list with",
    "`python scripts/security_rows.py` after adding one.",
    "",
    "| # | tests |",
    "|---|---|",
]
for n in sorted(found):
    body.append(f"| {n} | " + "<br>".join(found[n]) + " |")
if head in text:
    text = text[: text.index(head)]
doc.write_text(text.rstrip() + "\n" + head + "\n".join(body) + "\n")
