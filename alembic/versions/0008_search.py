"""search: SQLite's full-text index also holds each entry's owner

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 01:20:00

A search asks FTS5 for one user's matches (`user_id:"..." AND (words)`), so it reads the
posting lists of that user's rows instead of every user's matches joined back to `entry`.
The owner column has weight 0 in the ranking. entry_fts_terms (fts5vocab) lists the index's
terms, so the last word's prefix is expanded to them before the query. PostgreSQL is
unchanged (its planner reads the GIN index and the user's rows together).
"""
# ruff: noqa: S608 (only this file's own table and column names go into the statements)

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _search(columns: str) -> list[str]:
    new = ", ".join(f"new.{c.strip()}" for c in columns.split(","))
    old = ", ".join(f"old.{c.strip()}" for c in columns.split(","))
    return [
        f"CREATE VIRTUAL TABLE entry_fts USING fts5({columns}, content='entry', "
        "content_rowid='id', tokenize='porter unicode61 remove_diacritics 2')",
        f"CREATE TRIGGER entry_fts_insert AFTER INSERT ON entry BEGIN "
        f"INSERT INTO entry_fts(rowid, {columns}) VALUES (new.id, {new}); END",
        f"CREATE TRIGGER entry_fts_delete AFTER DELETE ON entry BEGIN "
        f"INSERT INTO entry_fts(entry_fts, rowid, {columns}) VALUES ('delete', old.id, {old}); END",
        f"CREATE TRIGGER entry_fts_update AFTER UPDATE OF title, body, tags ON entry BEGIN "
        f"INSERT INTO entry_fts(entry_fts, rowid, {columns}) VALUES ('delete', old.id, {old}); "
        f"INSERT INTO entry_fts(rowid, {columns}) VALUES (new.id, {new}); END",
        "INSERT INTO entry_fts(entry_fts) VALUES ('rebuild')",
    ]


def _drop() -> None:
    op.execute("DROP TABLE IF EXISTS entry_fts_terms")
    for trigger in ("insert", "delete", "update"):
        op.execute(f"DROP TRIGGER entry_fts_{trigger}")
    op.execute("DROP TABLE entry_fts")


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _drop()
        for statement in _search("title, body, tags, user_id"):
            op.execute(statement)
        # The index's terms, for expanding a prefix (app/services/entries.py).
        op.execute("CREATE VIRTUAL TABLE entry_fts_terms USING fts5vocab(entry_fts, 'row')")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _drop()
        for statement in _search("title, body, tags"):
            op.execute(statement)
