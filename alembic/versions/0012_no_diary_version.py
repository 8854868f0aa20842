"""no diary version: the answer cache it keyed is gone, and so are its triggers

Issue 15 kept a speed mechanism only where the mixed "day in the life" bench showed it earned
10%; once reads and writes stopped waiting on aiosqlite's thread, the answer cache earned
under 5% there (bench/README.md), so it went, and with it the counter every write to an
entry, category or photo bumped on the user's row.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 05:00:00
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("entry", "category", "photo")


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for table in TABLES:
            for event in ("insert", "update", "delete"):
                op.execute(f"DROP TRIGGER IF EXISTS {table}_version_{event}")
    else:
        for table in TABLES:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_version ON {table}")
        op.execute("DROP FUNCTION IF EXISTS bump_diary_version()")
    # In place on SQLite 3.35+ and PostgreSQL: rebuilding "user" would cascade to its rows.
    op.execute('ALTER TABLE "user" DROP COLUMN diary_version')


def _revision(name: str) -> ModuleType:
    """An earlier migration's module, to build its objects again."""
    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(f"{name}.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def downgrade() -> None:
    _revision("0004_diary_version").upgrade()  # the column, entry and category triggers
    bump = _revision("0010_photos").BUMP
    if op.get_bind().dialect.name == "sqlite":
        for event, row in (("insert", "new"), ("update", "new"), ("delete", "old")):
            op.execute(
                f"CREATE TRIGGER photo_version_{event} AFTER {event.upper()} ON photo "
                f"BEGIN {bump.format(row=row)}; END"
            )
    else:
        op.execute(
            "CREATE TRIGGER photo_version AFTER INSERT OR UPDATE OR DELETE ON photo "
            "FOR EACH ROW EXECUTE FUNCTION bump_diary_version()"
        )
