"""photos on wins: the photo table, entry.photo_count, and the diary-version triggers

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 01:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from fastapi_users_db_sqlalchemy.generics import GUID, TIMESTAMPAware

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

String = sqlmodel.sql.sqltypes.AutoString
BUMP = 'UPDATE "user" SET diary_version = diary_version + 1 WHERE id = {row}.user_id'


def upgrade() -> None:
    op.create_table(
        "photo",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", GUID(), nullable=False),
        sa.Column("entry_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("key", String(length=200), nullable=False),
        sa.Column("sha256", String(length=64), nullable=False),
        sa.Column("content_type", String(length=50), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("bytes", sa.Integer(), nullable=False),
        sa.Column("thumb_width", sa.Integer(), nullable=False),
        sa.Column("thumb_height", sa.Integer(), nullable=False),
        sa.Column("thumb_bytes", sa.Integer(), nullable=False),
        sa.Column("alt", String(length=500), nullable=False),
        sa.Column("created_at", TIMESTAMPAware(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["entry_id"], ["entry.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["user.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_photo_entry_position", "photo", ["entry_id", "position"])
    op.create_index("ix_photo_user", "photo", ["user_id"])
    # ADD COLUMN with a constant default: no table rebuild on SQLite (the entry table's
    # full-text triggers stay as they are).
    op.add_column(
        "entry", sa.Column("photo_count", sa.Integer(), server_default="0", nullable=False)
    )
    # A photo added, changed or removed changes the pages showing it: bump the diary
    # version as for entries (migration 0004), so no cached page shows old photos.
    if op.get_bind().dialect.name == "sqlite":
        for event, row in (("insert", "new"), ("update", "new"), ("delete", "old")):
            op.execute(
                f"CREATE TRIGGER photo_version_{event} AFTER {event.upper()} ON photo "
                f"BEGIN {BUMP.format(row=row)}; END"
            )
    else:
        op.execute(
            "CREATE TRIGGER photo_version AFTER INSERT OR UPDATE OR DELETE ON photo "
            "FOR EACH ROW EXECUTE FUNCTION bump_diary_version()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for event in ("insert", "update", "delete"):
            op.execute(f"DROP TRIGGER photo_version_{event}")
    else:
        op.execute("DROP TRIGGER photo_version ON photo")
    # SQLite 3.35+ and PostgreSQL drop a column in place (no rebuild of the entry table).
    op.execute("ALTER TABLE entry DROP COLUMN photo_count")
    op.drop_index("ix_photo_user", table_name="photo")
    op.drop_index("ix_photo_entry_position", table_name="photo")
    op.drop_table("photo")
