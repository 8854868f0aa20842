"""a security stamp on users (emailed links die with a change) and when each session was last used

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 22:00:00
"""

import unicodedata
from collections.abc import Sequence
from contextlib import suppress

import sqlalchemy as sa
from email_validator import EmailNotValidError, validate_email
from fastapi_users_db_sqlalchemy.generics import GUID, TIMESTAMPAware

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("user") as batch:
        batch.add_column(
            sa.Column("security_stamp", sa.Integer(), server_default="0", nullable=False)
        )
    # SQLite adds no column whose default is an expression: the table is copied instead.
    sqlite = op.get_bind().dialect.name == "sqlite"
    with op.batch_alter_table("access_token", recreate="always" if sqlite else "auto") as batch:
        batch.add_column(
            sa.Column(
                "last_used_at",
                TIMESTAMPAware(timezone=True),
                server_default=sa.func.now(),
                nullable=False,
            )
        )
    _normalise_emails()


def _normalise_emails() -> None:
    """Addresses stored before every way in normalised them (a page kept NFD or punycode) get
    the form sign-in now looks for, unless another account already has that spelling (then
    it stays as it was, and the account holding the normal form is the one signed in)."""
    bind = op.get_bind()
    users = sa.table("user", sa.column("id", GUID()), sa.column("email", sa.String()))
    rows = bind.execute(sa.select(users.c.id, users.c.email)).all()
    taken = {email for _, email in rows}
    for user_id, email in rows:
        normal = _normal(email)
        if normal not in taken:
            bind.execute(users.update().where(users.c.id == user_id).values(email=normal))
            taken.add(normal)


def _normal(email: str) -> str:
    """app.services.accounts.normalise_email as of this revision (NFC, email-validator's
    form with the domain IDNA-mapped, lower case), copied so the migration never changes."""
    email = unicodedata.normalize("NFC", email.strip())
    with suppress(EmailNotValidError):
        email = validate_email(email, check_deliverability=False).normalized
    return unicodedata.normalize("NFC", email.lower())


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    with op.batch_alter_table("access_token", recreate="always" if sqlite else "auto") as batch:
        batch.drop_column("last_used_at")
    # ALTER TABLE, not a copy: the diary triggers (0004) name the user table.
    op.drop_column("user", "security_stamp")
