"""audit trail of account events, and a pending address on email codes for email changes

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 02:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from fastapi_users_db_sqlalchemy.generics import GUID, TIMESTAMPAware

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

String = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    op.create_table(
        "audit_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", GUID(), nullable=False),
        sa.Column("kind", String(length=32), nullable=False),
        sa.Column("created_at", TIMESTAMPAware(timezone=True), nullable=False),
        sa.Column("ip", String(length=45), nullable=False),
        sa.Column("user_agent", String(length=200), nullable=False),
        sa.Column("detail", String(length=200), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["user.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_audit_event_user_created", "audit_event", ["user_id", "created_at"])
    with op.batch_alter_table("email_code") as batch:
        batch.add_column(sa.Column("pending_email", String(length=320), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("email_code") as batch:
        batch.drop_column("pending_email")
    op.drop_index("ix_audit_event_user_created", table_name="audit_event")
    op.drop_table("audit_event")
