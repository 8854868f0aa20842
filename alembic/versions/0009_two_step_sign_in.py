"""two-step sign-in: TOTP, recovery codes, passkeys, pending sign-ins and WebAuthn challenges

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 01:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from fastapi_users_db_sqlalchemy.generics import GUID, TIMESTAMPAware

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

String = sqlmodel.sql.sqltypes.AutoString


def _user_fk() -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(["user_id"], ["user.id"], ondelete="CASCADE")


def upgrade() -> None:
    op.create_table(
        "two_factor",
        sa.Column("user_id", GUID(), nullable=False),
        sa.Column("totp_secret", String(length=255), nullable=True),
        sa.Column("totp_enabled", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("totp_last_step", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("nudge_dismissed", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("updated_at", TIMESTAMPAware(timezone=True), nullable=False),
        _user_fk(),
        sa.PrimaryKeyConstraint("user_id"),
    )
    op.create_table(
        "recovery_code",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", GUID(), nullable=False),
        sa.Column("code_hash", String(length=64), nullable=False),
        sa.Column("used_at", TIMESTAMPAware(timezone=True), nullable=True),
        _user_fk(),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_recovery_code_user_id", "recovery_code", ["user_id"])
    op.create_table(
        "passkey",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", GUID(), nullable=False),
        sa.Column("credential_id", String(length=1400), nullable=False),
        sa.Column("public_key", sa.LargeBinary(), nullable=False),
        sa.Column("sign_count", sa.BigInteger(), nullable=False),
        sa.Column("name", String(length=64), nullable=False),
        sa.Column("transports", String(length=200), nullable=False),
        sa.Column("created_at", TIMESTAMPAware(timezone=True), nullable=False),
        sa.Column("last_used_at", TIMESTAMPAware(timezone=True), nullable=True),
        _user_fk(),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("credential_id"),
    )
    op.create_index("ix_passkey_user_id", "passkey", ["user_id"])
    op.create_table(
        "pending_sign_in",
        sa.Column("token_hash", String(length=64), nullable=False),
        sa.Column("user_id", GUID(), nullable=False),
        sa.Column("next_path", String(length=2048), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("expires_at", TIMESTAMPAware(timezone=True), nullable=False),
        _user_fk(),
        sa.PrimaryKeyConstraint("token_hash"),
    )
    op.create_index("ix_pending_sign_in_user_id", "pending_sign_in", ["user_id"])
    op.create_table(
        "webauthn_challenge",
        sa.Column("handle_hash", String(length=64), nullable=False),
        sa.Column("user_id", GUID(), nullable=True),
        sa.Column("purpose", String(length=16), nullable=False),
        sa.Column("challenge", sa.LargeBinary(), nullable=False),
        sa.Column("expires_at", TIMESTAMPAware(timezone=True), nullable=False),
        _user_fk(),
        sa.PrimaryKeyConstraint("handle_hash"),
    )
    op.create_index("ix_webauthn_challenge_user_id", "webauthn_challenge", ["user_id"])


def downgrade() -> None:
    op.drop_index("ix_webauthn_challenge_user_id", table_name="webauthn_challenge")
    op.drop_table("webauthn_challenge")
    op.drop_index("ix_pending_sign_in_user_id", table_name="pending_sign_in")
    op.drop_table("pending_sign_in")
    op.drop_index("ix_passkey_user_id", table_name="passkey")
    op.drop_table("passkey")
    op.drop_index("ix_recovery_code_user_id", table_name="recovery_code")
    op.drop_table("recovery_code")
    op.drop_table("two_factor")
