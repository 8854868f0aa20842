"""Categories a user files wins under (Work, Health, ...): each user owns their own."""

import uuid
from datetime import datetime

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from app.models.base import GUID, TIMESTAMPAware, utcnow


class Category(SQLModel, table=True):
    __tablename__ = "category"
    __table_args__ = (UniqueConstraint("user_id", "name", name="uq_category_user_name"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: uuid.UUID = Field(sa_type=GUID, foreign_key="user.id", ondelete="CASCADE", index=True)
    name: str = Field(max_length=50)
    colour: str = Field(max_length=7, default="#64748b")
    created_at: datetime = Field(default_factory=utcnow, sa_type=TIMESTAMPAware(timezone=True))
