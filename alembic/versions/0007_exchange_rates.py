"""exchange rates: the ECB's daily reference rates and each user's manual rates

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 22:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from fastapi_users_db_sqlalchemy.generics import GUID, TIMESTAMPAware

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

String = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    op.create_table(
        "exchange_rate",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("currency", String(length=3), nullable=False),
        sa.Column("rate", String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("day", "currency"),
    )
    op.create_table(
        "manual_rate",
        sa.Column("user_id", GUID(), nullable=False),
        sa.Column("currency", String(length=3), nullable=False),
        sa.Column("rate", String(length=32), nullable=False),
        sa.Column("updated_at", TIMESTAMPAware(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["user.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id", "currency"),
    )


def downgrade() -> None:
    op.drop_table("manual_rate")
    op.drop_table("exchange_rate")
