"""Categories a user files wins under (Work, Health, ...): each user owns their own."""

import uuid
from datetime import datetime

from sqlalchemy import Index, UniqueConstraint, func, text
from sqlmodel import Field, SQLModel

from app.models.base import GUID, TIMESTAMPAware, utcnow


class Category(SQLModel, table=True):
    __tablename__ = "category"
    __table_args__ = (
        UniqueConstraint("user_id", "name", name="uq_category_user_name"),
        # Names that differ only by case are one name, even when two requests race past the
        # service's check: the second insert fails here and is answered 422 (migration 0005).
        Index("uq_category_user_lower_name", "user_id", func.lower(text("name")), unique=True),
    )

    id: int | None = Field(default=None, primary_key=True)
    user_id: uuid.UUID = Field(sa_type=GUID, foreign_key="user.id", ondelete="CASCADE", index=True)
    name: str = Field(max_length=50)
    colour: str = Field(max_length=7, default="#64748b")
    created_at: datetime = Field(default_factory=utcnow, sa_type=TIMESTAMPAware(timezone=True))
