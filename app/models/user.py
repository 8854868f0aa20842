"""Accounts and their revocable sessions (fastapi-users tables)."""

from datetime import datetime

from fastapi_users_db_sqlalchemy import SQLAlchemyBaseUserTableUUID
from fastapi_users_db_sqlalchemy.access_token import SQLAlchemyBaseAccessTokenTableUUID
from sqlalchemy import Integer, SmallInteger, String, func
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, TIMESTAMPAware, utcnow


class User(SQLAlchemyBaseUserTableUUID, Base):
    __tablename__ = "user"

    created_at: Mapped[datetime] = mapped_column(
        TIMESTAMPAware(timezone=True), default=utcnow, server_default=func.now(), nullable=False
    )
    # Preferences: how days, weeks and money are shown to this user.
    timezone: Mapped[str] = mapped_column(String(64), default="UTC", server_default="UTC")
    week_start: Mapped[int] = mapped_column(
        SmallInteger, default=0, server_default="0"
    )  # 0 Mon, 6 Sun
    theme: Mapped[str] = mapped_column(String(6), default="system", server_default="system")
    base_currency: Mapped[str] = mapped_column(String(3), default="USD", server_default="USD")
    # Signed into every emailed link (the reset token) and bumped when the email or the
    # password changes, so a link mailed before the change no longer works.
    security_stamp: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Habits (app/services/habits.py): a reminder at "HH:MM" local time (None: off) on these
    # ISO weekdays ("1234567": every day), and a digest: off, weekly or monthly.
    reminder_time: Mapped[str | None] = mapped_column(String(5), nullable=True, default=None)
    reminder_days: Mapped[str] = mapped_column(
        String(7), default="1234567", server_default="1234567"
    )
    digest: Mapped[str] = mapped_column(String(7), default="off", server_default="off")


class AccessToken(SQLAlchemyBaseAccessTokenTableUUID, Base):
    """A session: only the SHA-256 of the token is stored, so a leaked table opens nothing."""

    __tablename__ = "access_token"

    # When the session was last used, recorded at most every few minutes (app.auth.TOUCH_EVERY):
    # a session unused for longer than SESSION_IDLE_SECONDS is over.
    last_used_at: Mapped[datetime] = mapped_column(
        TIMESTAMPAware(timezone=True), default=utcnow, server_default=func.now(), nullable=False
    )
