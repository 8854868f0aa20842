"""Database engines and sessions. SQLite gets WAL, foreign keys and a busy timeout."""

from collections.abc import AsyncIterator
from typing import Any

from fastapi import Request
from sqlalchemy import event
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=5000",
    "PRAGMA synchronous=NORMAL",
)


# Wall-clock, so it also covers a worker's own event loop being slow: at 5 s a burst of
# 1,000 requests on one busy worker timed out 26 new connections to a healthy server.
CONNECT_TIMEOUT_SECONDS = 10
# A burst (SECURITY.md row 28: 1,000 connections on one worker) queues for a pooled
# connection rather than failing after SQLAlchemy's default 30 s; a database that is down
# fails at connect (above), so this wait only ever covers a busy one.
POOL_TIMEOUT_SECONDS = 120


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    for pragma in SQLITE_PRAGMAS:
        cursor.execute(pragma)
    cursor.close()


def make_engine(url: str) -> AsyncEngine:
    if url.startswith("sqlite"):
        engine = create_async_engine(
            url, connect_args={"timeout": 5}, pool_timeout=POOL_TIMEOUT_SECONDS
        )
        event.listen(engine.sync_engine, "connect", _sqlite_on_connect)
        return engine
    # pre_ping replaces connections the server dropped (a restart): the app recovers alone;
    # connect_timeout bounds the wait for a server that accepts but never answers.
    return create_async_engine(
        url,
        pool_size=10,
        max_overflow=20,
        pool_pre_ping=True,
        pool_timeout=POOL_TIMEOUT_SECONDS,
        connect_args={"connect_timeout": CONNECT_TIMEOUT_SECONDS},
    )


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.app.state.sessionmaker() as session:
        yield session


# Full-text search objects are written by hand in the migrations (SQLite FTS5 table and its
# shadow tables, PostgreSQL generated tsvector column and GIN index), so autogenerate skips them.
SEARCH_OBJECTS = {"search", "ix_entry_search"}


def include_object(
    obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    if name is None:
        return True
    if type_ == "table" and name.startswith("entry_fts"):
        return False
    return name not in SEARCH_OBJECTS
