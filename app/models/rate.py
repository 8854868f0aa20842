"""Exchange rates: the ECB's daily reference rates, and a user's own for other currencies.

A rate is how many units of a currency one euro buys on a day (the ECB's convention); it is
kept as the decimal text the source gave, so SQLite and PostgreSQL return it exactly.
"""

import uuid
from datetime import date, datetime

from sqlmodel import Field, SQLModel

from app.models.base import GUID, TIMESTAMPAware, utcnow


class ExchangeRate(SQLModel, table=True):
    """One currency on one ECB business day (rows come only from the ECB's files)."""

    __tablename__ = "exchange_rate"

    day: date = Field(primary_key=True)
    currency: str = Field(primary_key=True, max_length=3)
    rate: str = Field(max_length=32)


class ManualRate(SQLModel, table=True):
    """A user's own rate for a currency the ECB does not publish, valid on every day."""

    __tablename__ = "manual_rate"

    user_id: uuid.UUID = Field(
        sa_type=GUID, foreign_key="user.id", ondelete="CASCADE", primary_key=True
    )
    currency: str = Field(primary_key=True, max_length=3)
    rate: str = Field(max_length=32)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=TIMESTAMPAware(timezone=True))
