"""habits: reminder and digest preferences, and the scheduled mail already sent

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 01:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from fastapi_users_db_sqlalchemy.generics import GUID, TIMESTAMPAware

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

String = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    with op.batch_alter_table("user") as batch:
        batch.add_column(sa.Column("reminder_time", String(length=5), nullable=True))
        batch.add_column(
            sa.Column("reminder_days", String(length=7), nullable=False, server_default="1234567")
        )
        batch.add_column(
            sa.Column("digest", String(length=7), nullable=False, server_default="off")
        )
    op.create_table(
        "sent_mail",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", String(length=120), nullable=False),
        sa.Column("user_id", GUID(), nullable=False),
        sa.Column("kind", String(length=16), nullable=False),
        sa.Column("period", sa.Date(), nullable=False),
        sa.Column("status", String(length=8), nullable=False),
        sa.Column("attempt", sa.Integer(), server_default="1", nullable=False),
        sa.Column("claimed_at", TIMESTAMPAware(timezone=True), nullable=False),
        sa.Column("sent_at", TIMESTAMPAware(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["user.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key"),
    )
    op.create_index("ix_sent_mail_user_id", "sent_mail", ["user_id"])


def downgrade() -> None:
    op.drop_index("ix_sent_mail_user_id", table_name="sent_mail")
    op.drop_table("sent_mail")
    for column in ("digest", "reminder_days", "reminder_time"):
        op.drop_column("user", column)  # ALTER TABLE ... DROP COLUMN (SQLite 3.35+)
