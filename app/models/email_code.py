"""6-digit codes (new account or new address): stored as an HMAC, short-lived, single use."""

import uuid
from datetime import datetime

from sqlalchemy import false
from sqlmodel import Field, SQLModel

from app.models.base import GUID, TIMESTAMPAware, utcnow


class EmailCode(SQLModel, table=True):
    __tablename__ = "email_code"

    id: int | None = Field(default=None, primary_key=True)
    user_id: uuid.UUID = Field(
        sa_type=GUID, foreign_key="user.id", ondelete="CASCADE", index=True, unique=True
    )
    code_hash: str = Field(max_length=64)
    expires_at: datetime = Field(sa_type=TIMESTAMPAware(timezone=True))
    attempts: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    # Set when the code confirms a change of address rather than a new account's address.
    pending_email: str | None = Field(default=None, max_length=320)
    mail_failed: bool = Field(default=False, sa_column_kwargs={"server_default": false()})
    created_at: datetime = Field(default_factory=utcnow, sa_type=TIMESTAMPAware(timezone=True))
