"""Database engines and sessions. SQLite gets WAL, foreign keys and a busy timeout.

GET and HEAD requests read through a second engine whose connections refuse writes, so a
write in a GET fails loudly. On SQLite its connections run on the event loop's own thread: a
WAL reader never waits for a lock, and a few hundred microseconds of query cost less than
aiosqlite's thread hop on every call (about 1 ms a statement). Everything else (forms, the
API's writes, background jobs, exports) keeps aiosqlite's worker threads, where waiting for
the write lock never blocks the loop. On PostgreSQL the read connections run in autocommit.
"""

import sqlite3
from collections.abc import Callable, Generator
from functools import partial
from typing import Any

import aiosqlite
from fastapi import Request
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from starlette.types import ASGIApp, Receive, Scope, Send

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
    return _postgres_engine(url)


def _postgres_engine(url: str, **options: Any) -> AsyncEngine:
    """pre_ping replaces connections the server dropped (a restart): the app recovers alone;
    connect_timeout bounds the wait for a server that accepts but never answers."""
    connect_args = {"connect_timeout": CONNECT_TIMEOUT_SECONDS, **options.pop("connect_args", {})}
    return create_async_engine(
        url,
        pool_size=10,
        max_overflow=20,
        pool_pre_ping=True,
        pool_timeout=POOL_TIMEOUT_SECONDS,
        connect_args=connect_args,
        **options,
    )


class InlineConnection(aiosqlite.Connection):
    """aiosqlite's interface, run on the calling thread instead of a worker thread."""

    def __init__(self, connector: Callable[[], sqlite3.Connection]) -> None:
        super().__init__(connector, iter_chunk_size=64)

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if self._connection is None:
            raise ValueError("Connection closed")
        return fn(*args, **kwargs)

    def __await__(self) -> Generator[Any, None, "InlineConnection"]:
        self._connection = self._connector()
        return self._itself().__await__()

    async def _itself(self) -> "InlineConnection":
        return self

    def stop(self) -> None:
        self._running = False
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    async def close(self) -> None:
        self.stop()


def _read_only(connection: sqlite3.Connection) -> sqlite3.Connection:
    connection.execute("PRAGMA query_only=ON")
    return connection


def make_read_engine(url: str) -> AsyncEngine:
    """The engine GET requests read through, where a write fails. On SQLite inline
    connections (see above); on PostgreSQL read-only connections in autocommit, so a read
    costs its own round trip and no BEGIN and ROLLBACK around it."""
    if not url.startswith("sqlite"):
        return _postgres_engine(
            url,
            isolation_level="AUTOCOMMIT",
            connect_args={"options": "-c default_transaction_read_only=on"},
        )
    database = make_url(url).database or ""
    connect = partial(sqlite3.connect, database, timeout=5, check_same_thread=False)

    async def connector() -> InlineConnection:
        return await InlineConnection(lambda: _read_only(connect()))

    engine = create_async_engine(url, async_creator=connector, pool_timeout=POOL_TIMEOUT_SECONDS)
    event.listen(engine.sync_engine, "connect", _sqlite_on_connect)
    return engine


def make_lookup_engine(url: str) -> Engine | None:
    """On SQLite, a plain synchronous engine for the one statement every signed-in GET runs
    (the session lookup, app.auth): run on this thread it costs about 50 microseconds, where
    an asynchronous session costs ten times that in greenlet and pool hand-offs. None on
    PostgreSQL, whose lookup goes through the request's session."""
    if not url.startswith("sqlite"):
        return None
    engine = create_engine(url.replace("+aiosqlite", ""), connect_args={"timeout": 5})
    event.listen(engine, "connect", _sqlite_on_connect)
    event.listen(engine, "connect", lambda connection, _record: _read_only(connection))
    return engine


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


SAFE_METHODS = ("GET", "HEAD")
SESSIONS = "successdiary.sessions"


class CloseSessions:
    """Closes the database sessions a request opened (get_session) once its answer is sent,
    or failed: an uncommitted session rolls back and its connection returns to the pool."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sessions: list[AsyncSession] = []
        scope[SESSIONS] = sessions
        try:
            await self.app(scope, receive, send)
        finally:
            for session in sessions:
                if session.in_transaction():  # else it holds no connection: nothing to close
                    await session.close()


async def get_session(request: Request) -> AsyncSession:
    """The request's session (FastAPI hands the same one to every dependency of a request).

    A plain coroutine, not a generator: FastAPI runs a generator dependency's exit in a
    shielded task group, about 0.2 ms a request (measured); CloseSessions closes it.
    """
    state = request.app.state
    maker = state.read_sessionmaker if request.method in SAFE_METHODS else state.sessionmaker
    session: AsyncSession = maker()
    request.scope[SESSIONS].append(session)
    return session


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
