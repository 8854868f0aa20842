"""diary version: a counter on the user that every change to their entries or categories bumps

Triggers keep it, so no write path (pages, API, import, CLI) can forget to. Caches of pages
and stats are keyed by it (app/cache.py): a changed diary is a new key, never a stale answer.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 05:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("entry", "category")
BUMP = 'UPDATE "user" SET diary_version = diary_version + 1 WHERE id = {row}.user_id'
POSTGRES_FUNCTION = f"""
CREATE FUNCTION bump_diary_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP <> 'INSERT' THEN {BUMP.format(row="OLD")}; END IF;
  IF TG_OP <> 'DELETE' AND (TG_OP = 'INSERT' OR NEW.user_id <> OLD.user_id) THEN
    {BUMP.format(row="NEW")};
  END IF;
  RETURN NULL;
END $$
"""


def _sqlite_triggers(table: str) -> list[str]:
    return [
        f"CREATE TRIGGER {table}_version_insert AFTER INSERT ON {table} BEGIN "
        f"{BUMP.format(row='new')}; END",
        f"CREATE TRIGGER {table}_version_update AFTER UPDATE ON {table} BEGIN "
        f"{BUMP.format(row='old')}; {BUMP.format(row='new')} AND new.user_id <> old.user_id; END",
        f"CREATE TRIGGER {table}_version_delete AFTER DELETE ON {table} BEGIN "
        f"{BUMP.format(row='old')}; END",
    ]


def upgrade() -> None:
    with op.batch_alter_table("user") as batch:
        batch.add_column(
            sa.Column("diary_version", sa.Integer(), server_default="0", nullable=False)
        )
    if op.get_bind().dialect.name == "sqlite":
        for table in TABLES:
            for statement in _sqlite_triggers(table):
                op.execute(statement)
        return
    op.execute(POSTGRES_FUNCTION)
    for table in TABLES:
        op.execute(
            f"CREATE TRIGGER {table}_version AFTER INSERT OR UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION bump_diary_version()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for table in TABLES:
            for event in ("insert", "update", "delete"):
                op.execute(f"DROP TRIGGER {table}_version_{event}")
    else:
        for table in TABLES:
            op.execute(f"DROP TRIGGER {table}_version ON {table}")
        op.execute("DROP FUNCTION bump_diary_version()")
    with op.batch_alter_table("user") as batch:
        batch.drop_column("diary_version")
