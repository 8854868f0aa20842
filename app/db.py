"""Database engines and sessions. SQLite gets WAL, foreign keys and a busy timeout.

GET and HEAD requests read through a second engine whose connections refuse writes, so a
write in a GET fails loudly (SQLite: query_only; PostgreSQL: read-only, in autocommit). The
session lookup, pages and API reads all go through the ORM on these two engines: one way
to the database (docs/architecture.md, "The read path").

On SQLite both engines use the synchronous driver (pysqlite) behind the same AsyncSession,
in the event loop's own thread: an indexed statement takes microseconds, while aiosqlite
handed every call to a thread and back, which cost a page more than its SQL, and let a write
transaction wait for the loop between its statements while it held the write lock, so under
load every writer queued behind the busiest page (docs/architecture.md, "The read path").
"""

import asyncio
import re
import sqlite3
import weakref
from typing import Any

from fastapi import Request
from sqlalchemy import CursorResult, Engine, create_engine, event
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session
from sqlalchemy.util import await_only
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
# (pool_size, max_overflow): the request gate (make_gate) admits their sum. SQLite's pool
# opens any more it is asked for (max_overflow=-1), so only the gate bounds it.
POSTGRES_POOL = (10, 20)
SQLITE_POOL = (5, 10)


def sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    for pragma in SQLITE_PRAGMAS:
        cursor.execute(pragma)
    cursor.close()


def sync_url(url: str) -> str:
    """The URL with a synchronous driver: the app's own engines on SQLite, migrations, the
    operator commands and the job worker's claims all take it."""
    return url.replace("sqlite+aiosqlite", "sqlite").replace(
        "postgresql+asyncpg", "postgresql+psycopg"
    )


def _sqlite_engine(url: str) -> Engine:
    """A synchronous engine whose pool never makes the event loop wait: connections past the
    pool's size are opened (and closed on return) instead. Requests take their turn at the
    gate before they connect; work after an answer (mail, the audit trail) does not."""
    engine = create_engine(
        sync_url(url),
        connect_args={"timeout": 5},
        pool_size=SQLITE_POOL[0],
        max_overflow=-1,
    )
    event.listen(engine, "connect", sqlite_on_connect)
    return engine


def make_engine(url: str) -> AsyncEngine | Engine:
    if url.startswith("sqlite"):
        engine = _sqlite_engine(url)
        _one_writer_at_a_time(engine)
        return engine
    return _postgres_engine(url)


# Statements that take SQLite's write lock.
WRITES = re.compile(r"\s*(INSERT|UPDATE|DELETE|REPLACE)\b", re.IGNORECASE)
WRITE_LOCK = "successdiary.write_lock"
WRITE_WAIT_SECONDS = 30


WRITE_LOCKS: "weakref.WeakKeyDictionary[Engine, asyncio.Lock]" = weakref.WeakKeyDictionary()


def write_lock(engine: Any) -> asyncio.Lock | None:
    """The SQLite engine's writer lock (below), for a write made through another connection
    (a thread's) that the event loop must finish: while it is pending, a write of the loop's
    own would wait in SQLite's busy handler, blocking the loop it waits for. None elsewhere."""
    return WRITE_LOCKS.get(engine)


def _one_writer_at_a_time(engine: Engine) -> None:
    """SQLite lets one transaction write at a time; waiters poll with growing sleeps (the busy
    handler), so under a burst some waited past busy_timeout and got "database is locked".
    Inside a worker, writers now queue on an asyncio lock instead, in order, without blocking
    the loop: taken before a transaction's first write, given back when its connection
    returns to the pool (commit, rollback or close). Between workers busy_timeout still rules.
    """
    lock = WRITE_LOCKS[engine] = asyncio.Lock()

    def before_write(conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if conn.info.get(WRITE_LOCK) or not WRITES.match(statement):
            return
        # We run in SQLAlchemy's greenlet: await_only waits on the event loop. A free lock is
        # taken at once; wait_for (a task on Python 3.11) would first give the loop a turn,
        # with the lock held, and under load every writer queued behind those turns.
        try:
            await_only(
                asyncio.wait_for(lock.acquire(), WRITE_WAIT_SECONDS)
                if lock.locked()
                else lock.acquire()
            )
        except TimeoutError as exc:
            raise PoolTimeout(f"no turn to write within {WRITE_WAIT_SECONDS} s") from exc
        conn.info[WRITE_LOCK] = True

    def returned(_dbapi_connection: Any, record: Any) -> None:
        if record.info.pop(WRITE_LOCK, False):
            lock.release()

    event.listen(engine, "before_cursor_execute", before_write)
    event.listen(engine, "checkin", returned)


def _postgres_engine(url: str, **options: Any) -> AsyncEngine:
    """pre_ping replaces connections the server dropped (a restart): the app recovers alone;
    connect_timeout bounds the wait for a server that accepts but never answers."""
    connect_args = {"connect_timeout": CONNECT_TIMEOUT_SECONDS, **options.pop("connect_args", {})}
    connect_args["options"] = " ".join([PLAN_EACH_TIME, connect_args.get("options", "")]).strip()
    return create_async_engine(
        url,
        pool_size=POSTGRES_POOL[0],
        max_overflow=POSTGRES_POOL[1],
        pool_pre_ping=True,
        pool_timeout=POOL_TIMEOUT_SECONDS,
        connect_args=connect_args,
        **options,
    )


# psycopg prepares a statement run five times on a connection, and PostgreSQL may then plan it
# once for any parameters: a search's plan depends on its words (a common one walks the user's
# newest entries, a rare one reads the full-text index), so every execution is planned for its
# own values (about 0.05 ms a statement, measured on the list query).
PLAN_EACH_TIME = "-c plan_cache_mode=force_custom_plan"
# PostgreSQL connections that refuse writes (the engine GETs read through).
READ_ONLY_OPTIONS = "-c default_transaction_read_only=on"


def read_only(connection: sqlite3.Connection) -> sqlite3.Connection:
    connection.execute("PRAGMA query_only=ON")
    return connection


def make_read_engine(url: str) -> AsyncEngine | Engine:
    """The engine GET requests read through, where a write fails: SQLite connections with
    query_only on, on the synchronous driver (the module's docstring says why); PostgreSQL
    read-only connections in autocommit, so a read costs its own round trip and no BEGIN and
    ROLLBACK around it."""
    if not url.startswith("sqlite"):
        return _postgres_engine(
            url,
            isolation_level="AUTOCOMMIT",
            connect_args={"options": READ_ONLY_OPTIONS},
        )
    engine = _sqlite_engine(url)
    event.listen(engine, "connect", lambda conn, _record: read_only(conn))
    return engine


def sync_engine(engine: AsyncEngine | Engine) -> Engine:
    return engine.sync_engine if isinstance(engine, AsyncEngine) else engine


async def dispose(engine: AsyncEngine | Engine) -> None:
    if isinstance(engine, AsyncEngine):
        await engine.dispose()
    else:
        engine.dispose()


class BufferedSession(Session):
    """A Session whose results are fetched before they are returned, as the ORM's own already
    are. AsyncSession closes a Core result's cursor the asynchronous way, which a synchronous
    driver's cursor cannot do; a fetched result holds no cursor."""

    def execute(self, *args: Any, **kwargs: Any) -> Any:
        result = super().execute(*args, **kwargs)
        if isinstance(result, CursorResult) and result.returns_rows:
            return result.freeze()()
        return result


def make_sessionmaker(engine: AsyncEngine | Engine) -> async_sessionmaker[AsyncSession]:
    """AsyncSessions on the engine. On a synchronous one (SQLite's two) the AsyncSession
    proxies a BufferedSession bound to it (`sync_session_class`, SQLAlchemy's documented
    hook), so services await the same calls whichever engine serves them."""
    if isinstance(engine, AsyncEngine):
        return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)

    def bound(**options: Any) -> Session:
        options.update(bind=engine, binds=None)
        return BufferedSession(**options)

    return async_sessionmaker(class_=AsyncSession, sync_session_class=bound, expire_on_commit=False)


SAFE_METHODS = ("GET", "HEAD")
SESSIONS = "successdiary.sessions"


def make_gate(engine: AsyncEngine | Engine) -> asyncio.Semaphore:
    """Requests take a turn here, in arrival order, before their session may connect: at most
    as many as the pool holds. Waiting in SQLAlchemy's pool instead is not fair (a request
    that has just arrived can take the connection a waiting one was woken for, which then
    queues again at the back): with 1,000 connections on PostgreSQL some waited over 30 s
    while most were answered in 0.1 s."""
    capacity = POSTGRES_POOL if engine.dialect.name == "postgresql" else SQLITE_POOL
    return asyncio.Semaphore(sum(capacity))


class CloseSessions:
    """Closes the database sessions a request opened (get_session) once its answer is sent,
    or failed: an uncommitted session rolls back and its connection returns to the pool."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sessions: list[tuple[AsyncSession, asyncio.Semaphore | None]] = []  # at most one
        scope[SESSIONS] = sessions
        try:
            await self.app(scope, receive, send)
        finally:
            for session, gate in sessions:
                try:
                    if session.in_transaction():  # else it holds no connection
                        await session.close()
                finally:
                    if gate is not None:
                        gate.release()


async def get_session(request: Request) -> AsyncSession:
    """The request's session: one per request, made on first use (a dependency, or called
    directly by code that may not need one, like a cached page), closed by CloseSessions.

    A plain coroutine, not a generator: FastAPI runs a generator dependency's exit in a
    shielded task group, about 0.2 ms a request (measured).
    """
    sessions = request.scope[SESSIONS]
    if sessions:
        return sessions[0][0]
    state = request.app.state
    safe = request.method in SAFE_METHODS
    maker = state.read_sessionmaker if safe else state.sessionmaker
    gate: asyncio.Semaphore | None = state.read_gate if safe else state.write_gate
    if gate is not None:
        await gate.acquire()
    session: AsyncSession = maker()
    sessions.append((session, gate))
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
