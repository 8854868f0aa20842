"""diary: entries, categories, tags, preferences and full-text search

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 14:26:45

Search is written by hand per backend: SQLite gets an FTS5 table (porter stemming) kept in
sync by triggers; PostgreSQL gets a generated, weighted tsvector column with a GIN index.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from fastapi_users_db_sqlalchemy.generics import GUID, TIMESTAMPAware

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

String = sqlmodel.sql.sqltypes.AutoString
FTS_COLUMNS = "title, body, tags"
SQLITE_SEARCH = [
    "CREATE VIRTUAL TABLE entry_fts USING fts5(title, body, tags, content='entry', "
    "content_rowid='id', tokenize='porter unicode61 remove_diacritics 2')",
    f"CREATE TRIGGER entry_fts_insert AFTER INSERT ON entry BEGIN "
    f"INSERT INTO entry_fts(rowid, {FTS_COLUMNS}) VALUES (new.id, new.title, new.body, new.tags); END",
    f"CREATE TRIGGER entry_fts_delete AFTER DELETE ON entry BEGIN "
    f"INSERT INTO entry_fts(entry_fts, rowid, {FTS_COLUMNS}) "
    f"VALUES ('delete', old.id, old.title, old.body, old.tags); END",
    f"CREATE TRIGGER entry_fts_update AFTER UPDATE OF {FTS_COLUMNS} ON entry BEGIN "
    f"INSERT INTO entry_fts(entry_fts, rowid, {FTS_COLUMNS}) "
    f"VALUES ('delete', old.id, old.title, old.body, old.tags); "
    f"INSERT INTO entry_fts(rowid, {FTS_COLUMNS}) VALUES (new.id, new.title, new.body, new.tags); END",
]
POSTGRES_SEARCH = [
    "ALTER TABLE entry ADD COLUMN search tsvector GENERATED ALWAYS AS ("
    "setweight(to_tsvector('english', title), 'A') || "
    "setweight(to_tsvector('english', tags), 'A') || "
    "setweight(to_tsvector('english', body), 'B')) STORED",
    "CREATE INDEX ix_entry_search ON entry USING GIN (search)",
]


def upgrade() -> None:
    op.create_table(
        "category",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", GUID(), nullable=False),
        sa.Column("name", String(length=50), nullable=False),
        sa.Column("colour", String(length=7), nullable=False),
        sa.Column("created_at", TIMESTAMPAware(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["user.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("user_id", "name", name="uq_category_user_name"),
    )
    op.create_index("ix_category_user_id", "category", ["user_id"])

    op.create_table(
        "entry",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", GUID(), nullable=False),
        sa.Column("category_id", sa.Integer(), nullable=True),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("title", String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("body_html", sa.Text(), nullable=False),
        sa.Column("tags", String(length=1100), nullable=False),
        sa.Column("mood", sa.Integer(), nullable=True),
        sa.Column("amount_minor", sa.BigInteger(), nullable=True),
        sa.Column("currency", String(length=3), nullable=True),
        sa.Column("created_at", TIMESTAMPAware(timezone=True), nullable=False),
        sa.Column("updated_at", TIMESTAMPAware(timezone=True), nullable=False),
        sa.Column("deleted_at", TIMESTAMPAware(timezone=True), nullable=True),
        sa.CheckConstraint("mood IS NULL OR (mood BETWEEN 1 AND 5)", name="ck_entry_mood"),
        sa.ForeignKeyConstraint(["category_id"], ["category.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["user_id"], ["user.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_entry_category_id", "entry", ["category_id"])
    op.create_index("ix_entry_user_day", "entry", ["user_id", "day", "id"])

    op.create_table(
        "entry_tag",
        sa.Column("entry_id", sa.Integer(), nullable=False),
        sa.Column("tag", String(length=50), nullable=False),
        sa.Column("user_id", GUID(), nullable=False),
        sa.ForeignKeyConstraint(["entry_id"], ["entry.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["user.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("entry_id", "tag"),
    )
    op.create_index("ix_entry_tag_user_tag", "entry_tag", ["user_id", "tag"])

    with op.batch_alter_table("user") as batch_op:
        batch_op.add_column(sa.Column("timezone", sa.String(length=64), server_default="UTC", nullable=False))
        batch_op.add_column(sa.Column("week_start", sa.SmallInteger(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("theme", sa.String(length=6), server_default="system", nullable=False))
        batch_op.add_column(sa.Column("base_currency", sa.String(length=3), server_default="USD", nullable=False))

    for statement in SQLITE_SEARCH if op.get_bind().dialect.name == "sqlite" else POSTGRES_SEARCH:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for trigger in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER entry_fts_{trigger}")
        op.execute("DROP TABLE entry_fts")
    with op.batch_alter_table("user") as batch_op:
        for column in ("base_currency", "theme", "week_start", "timezone"):
            batch_op.drop_column(column)
    op.drop_table("entry_tag")
    op.drop_table("entry")
    op.drop_table("category")
