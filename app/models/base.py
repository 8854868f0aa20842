"""One registry for SQLModel tables and fastapi-users' declarative tables."""

from datetime import UTC, datetime

from fastapi_users_db_sqlalchemy.generics import GUID, TIMESTAMPAware
from sqlalchemy.orm import DeclarativeBase
from sqlmodel.main import default_registry

__all__ = ["GUID", "Base", "TIMESTAMPAware", "utcnow"]


class Base(DeclarativeBase):
    registry = default_registry
    metadata = default_registry.metadata


def utcnow() -> datetime:
    return datetime.now(UTC)
