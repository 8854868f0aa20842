"""Diary entries (wins) and their tags.

Tags live twice on purpose: `entry.tags` (space-separated, for display and full-text search
in the same row) and `entry_tag` rows (indexed, for filtering by tag). Money is stored in
minor units of its currency so SQLite and PostgreSQL give exact, identical sums.
Full-text search (SQLite FTS5 table with triggers, PostgreSQL tsvector + GIN) is created by
the migration, not declared here: see alembic/versions and app.db.include_object.
"""

import uuid
from datetime import date, datetime

from sqlalchemy import BigInteger, CheckConstraint, Index, Text
from sqlmodel import Field, SQLModel

from app.models.base import GUID, TIMESTAMPAware, utcnow

# What the dashboard adds up, kept in the user-and-day index after its order (migration 0013):
# the figures read the index alone, not each entry's row.
FIGURE_COLUMNS = ("deleted_at", "category_id", "mood", "currency", "amount_minor")


class Entry(SQLModel, table=True):
    __tablename__ = "entry"
    __table_args__ = (
        Index("ix_entry_user_day", "user_id", "day", "id", *FIGURE_COLUMNS),
        CheckConstraint("mood IS NULL OR (mood BETWEEN 1 AND 5)", name="ck_entry_mood"),
    )

    id: int | None = Field(default=None, primary_key=True)
    user_id: uuid.UUID = Field(sa_type=GUID, foreign_key="user.id", ondelete="CASCADE")
    category_id: int | None = Field(
        default=None, foreign_key="category.id", ondelete="SET NULL", index=True
    )
    day: date
    title: str = Field(max_length=200)
    body: str = Field(default="", sa_type=Text)
    body_html: str = Field(default="", sa_type=Text)
    tags: str = Field(default="", max_length=1100)
    mood: int | None = None
    amount_minor: int | None = Field(default=None, sa_type=BigInteger)
    currency: str | None = Field(default=None, max_length=3)
    created_at: datetime = Field(default_factory=utcnow, sa_type=TIMESTAMPAware(timezone=True))
    updated_at: datetime = Field(default_factory=utcnow, sa_type=TIMESTAMPAware(timezone=True))
    deleted_at: datetime | None = Field(default=None, sa_type=TIMESTAMPAware(timezone=True))
    # Bumped by every change (services.entries): the API's ETag and the edit form's hidden
    # field, so a save based on an older version is refused instead of silently lost.
    version: int = Field(default=1, sa_column_kwargs={"server_default": "1"})
    # How many photos the entry has (services.photos keeps it): a list of entries asks for
    # photos only when one of them has some, so a diary without photos pays no query.
    photo_count: int = Field(default=0, sa_column_kwargs={"server_default": "0"})

    @property
    def tag_list(self) -> list[str]:
        return self.tags.split()


class EntryTag(SQLModel, table=True):
    __tablename__ = "entry_tag"
    __table_args__ = (Index("ix_entry_tag_user_tag", "user_id", "tag"),)

    entry_id: int = Field(foreign_key="entry.id", ondelete="CASCADE", primary_key=True)
    tag: str = Field(max_length=50, primary_key=True)
    user_id: uuid.UUID = Field(sa_type=GUID, foreign_key="user.id", ondelete="CASCADE")
