"""Scheduled mail already sent (or being sent): one row per user, kind and period.

The unique `key` (e.g. "reminder:<user>:2026-12-02") is claimed before the mail goes out, so
two consumers, or a consumer retrying after it was killed, never send one period's mail twice
(app/services/habits.py). Rows go with the account.
"""

import uuid
from datetime import date, datetime

from sqlmodel import Field, SQLModel

from app.models.base import GUID, TIMESTAMPAware, utcnow


class SentMail(SQLModel, table=True):
    __tablename__ = "sent_mail"

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=120, unique=True)
    user_id: uuid.UUID = Field(sa_type=GUID, foreign_key="user.id", ondelete="CASCADE", index=True)
    kind: str = Field(max_length=16)  # reminder, weekly, monthly, test
    period: date  # the local day of a reminder, the first day a digest covers
    # queued: a job is on the queue; sending: claimed, not known to be sent (a killed consumer
    # leaves it so; taken over once stale); sent; skipped (a reminder for a day with a win).
    status: str = Field(default="queued", max_length=8)
    # Bumped each time the row is (re)queued: only the job holding the latest attempt sends.
    attempt: int = Field(default=1, sa_column_kwargs={"server_default": "1"})
    claimed_at: datetime = Field(default_factory=utcnow, sa_type=TIMESTAMPAware(timezone=True))
    sent_at: datetime | None = Field(default=None, sa_type=TIMESTAMPAware(timezone=True))
