"""The audit trail: account events a user sees as "recent activity" on /settings.

Rows go with the account (ON DELETE CASCADE). `detail` is a short note such as an export
format or a session count: never a password, code, token or diary text.
"""

import uuid
from datetime import datetime

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from app.models.base import GUID, TIMESTAMPAware, utcnow

KIND_MAX = 32
USER_AGENT_MAX = 200
DETAIL_MAX = 200


class AuditEvent(SQLModel, table=True):
    __tablename__ = "audit_event"
    __table_args__ = (Index("ix_audit_event_user_created", "user_id", "created_at"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: uuid.UUID = Field(sa_type=GUID, foreign_key="user.id", ondelete="CASCADE")
    kind: str = Field(max_length=KIND_MAX)
    created_at: datetime = Field(default_factory=utcnow, sa_type=TIMESTAMPAware(timezone=True))
    ip: str = Field(default="", max_length=45)
    user_agent: str = Field(default="", max_length=USER_AGENT_MAX)
    detail: str = Field(default="", max_length=DETAIL_MAX)
