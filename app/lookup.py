"""The statement every signed-in GET runs: a session token's hash joined to its user, for a
session younger than its lifetime and used within the idle time.

It runs on every page view, so it skips SQLAlchemy's session machinery (pool checkout,
greenlet hand-offs, the ORM's loading), which cost more than the query: on SQLite it is one
statement on a kept sqlite3 connection on the loop's own thread; on PostgreSQL one statement
on a kept psycopg connection, shared by every request waiting at that moment (one round trip
for all of them). Either way the columns come back through the type processors SQLAlchemy
itself would apply (GUID to UUID, timestamps to aware datetimes, integers to booleans), so
the user is what the ORM loads (tests/test_read_path.py compares them field by field).

Writes (POST and the rest) still load their user through the request's session
(app.auth.SESSION_LOOKUP), where the change they make is tracked.
"""

import asyncio
import sqlite3
import time
from datetime import datetime
from typing import Any

import psycopg
from sqlalchemy import Dialect, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import class_mapper, make_transient_to_detached

from app.db import CONNECT_TIMEOUT_SECONDS, READ_ONLY_OPTIONS, read_only, sqlite_on_connect
from app.models import AccessToken, User

_users, _tokens = User.__table__, AccessToken.__table__
_user_class = class_mapper(User).class_manager


def detached(values: dict[str, Any]) -> User:
    """A user as SQLAlchemy's loader builds one (values straight into the instance's dict:
    loaded, unchanged), detached from any session: a third of the constructor's cost."""
    user: User = _user_class.new_instance()
    user.__dict__.update(values)
    make_transient_to_detached(user)
    return user


class _Lookup:
    """The statement's text for one dialect, and how its values are bound and converted."""

    def __init__(self, dialect: Dialect, tokens_in: str, mark: str) -> None:
        quote = dialect.identifier_preparer.quote
        self.columns = tuple(
            (c.key, c.type.dialect_impl(dialect).result_processor(dialect, None))
            for c in _users.columns
        )
        self.bind_since = _tokens.c.created_at.type.dialect_impl(dialect).bind_processor(dialect)
        self.uses = RecentUses()
        user, token = quote(User.__tablename__), quote(AccessToken.__tablename__)
        wanted = ", ".join(f"{user}.{quote(c.name)}" for c in _users.columns)
        # Only our own quoted table and column names go into the text; values are bound.
        self.sql = (
            f"SELECT {wanted}, {token}.token FROM {user} JOIN {token} "  # noqa: S608
            f"ON {token}.user_id = {user}.id "
            f"WHERE {token}.token {tokens_in} AND {token}.created_at >= {mark} "
            f"AND {token}.last_used_at >= {mark}"
        )

    def since(self, since: datetime) -> Any:
        return self.bind_since(since) if self.bind_since else since

    def values(self, row: Any) -> dict[str, Any]:
        return {
            name: convert(value) if convert else value
            for (name, convert), value in zip(self.columns, row, strict=False)
        }


class SQLiteLookup(_Lookup):
    """On a kept sqlite3 connection (read-only), on this thread, with no await: about 10
    microseconds, where an asynchronous session cost 250 to 600 in hand-offs."""

    def __init__(self, url: str) -> None:
        self.engine = create_engine(url.replace("+aiosqlite", ""), connect_args={"timeout": 5})
        event.listen(self.engine, "connect", sqlite_on_connect)
        event.listen(self.engine, "connect", lambda connection, _record: read_only(connection))
        super().__init__(self.engine.dialect, "IN ({marks})", "?")
        self.connection: Any = None

    async def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None
        self.engine.dispose()

    async def users(
        self, hashes: list[str], since: datetime, used_since: datetime
    ) -> dict[str, User]:
        sql = self.sql.format(marks=", ".join("?" * len(hashes)))
        params = (*hashes, self.since(since), self.since(used_since))
        try:  # errors as SQLAlchemy raises them, so a database that is gone is a 503
            if self.connection is None:  # kept: nothing else uses it, and no await runs
                self.connection = self.engine.raw_connection()
            rows = self.connection.cursor().execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            if self.connection is not None:  # the next lookup opens the file afresh
                self.connection.invalidate()
                self.connection = None
            raise DBAPIError.instance(sql, params, exc, sqlite3.Error) from exc
        return {row[-1]: detached(self.values(row)) for row in rows}


Waiting = tuple[list[str], datetime, datetime, "asyncio.Future[dict[str, dict[str, Any]]]"]


class PostgresLookup(_Lookup):
    """On one kept psycopg connection (autocommit, read-only), shared: the requests that ask
    while a lookup is in flight wait for the next, which asks for all their tokens at once.
    Every request still gets an answer read after it asked, so a session signed out a moment
    before stops at once; under load a round trip serves many requests instead of one, and
    no request waits for a pooled connection first.

    A connection the server dropped (a restart) is replaced once, at once, as pre_ping does
    for the pool; a server that does not answer fails the lookup after the connect timeout,
    as the pool's connections do. Failures reach the app as SQLAlchemy's errors (a 503).
    """

    def __init__(self, url: str, dialect: Dialect) -> None:
        super().__init__(dialect, "= ANY(%s)", "%s")
        self.conninfo = make_url(url).set(drivername="postgresql").render_as_string(False)
        self.connection: psycopg.AsyncConnection[Any] | None = None
        self.waiting: list[Waiting] = []
        self.runner: asyncio.Task[None] | None = None

    async def close(self) -> None:
        if self.runner is not None:
            self.runner.cancel()
        await self._discard()

    async def users(
        self, hashes: list[str], since: datetime, used_since: datetime
    ) -> dict[str, User]:
        answer: asyncio.Future[dict[str, dict[str, Any]]] = (
            asyncio.get_running_loop().create_future()
        )
        self.waiting.append((hashes, since, used_since, answer))
        if self.runner is None or self.runner.done():
            self.runner = asyncio.create_task(self._run())
        found = await answer
        # A user object of its own for each request, even when they share a session.
        return {hashed: detached(values) for hashed, values in found.items()}

    async def _run(self) -> None:
        while self.waiting:
            batch, self.waiting = self.waiting, []
            asked = sorted({hashed for hashes, *_ in batch for hashed in hashes})
            # The latest cut-offs of the batch: a token is at least as young and as lately
            # used as each request asked for (a microsecond stricter for the earlier ones).
            since = max(since for _, since, _, _ in batch)
            used_since = max(used_since for _, _, used_since, _ in batch)
            try:
                rows = await self._query(asked, since, used_since)
            except Exception as exc:  # every request of the batch gets the error
                for *_, answer in batch:
                    if not answer.done():
                        answer.set_exception(exc)
                continue
            found = {row[-1]: self.values(row) for row in rows}
            for hashes, *_, answer in batch:
                if not answer.done():  # a request that gave up (its client left) is skipped
                    answer.set_result({h: found[h] for h in hashes if h in found})

    async def _query(self, hashes: list[str], since: datetime, used_since: datetime) -> list[Any]:
        params = (hashes, self.since(since), self.since(used_since))
        while True:
            kept = self.connection is not None
            try:
                async with asyncio.timeout(CONNECT_TIMEOUT_SECONDS):
                    if self.connection is None:
                        self.connection = await psycopg.AsyncConnection.connect(
                            self.conninfo,
                            autocommit=True,
                            connect_timeout=CONNECT_TIMEOUT_SECONDS,
                            options=READ_ONLY_OPTIONS,
                        )
                    cursor = self.connection.cursor(binary=True)
                    await cursor.execute(self.sql, params)
                    return await cursor.fetchall()
            except TimeoutError as exc:
                await self._discard()
                raise OperationalError(self.sql, params, exc) from exc
            except psycopg.Error as exc:
                await self._discard()
                if kept and isinstance(exc, psycopg.OperationalError):
                    continue  # dropped by the server: once more, on a new connection
                raise DBAPIError.instance(self.sql, params, exc, psycopg.Error) from exc

    async def _discard(self) -> None:
        connection, self.connection = self.connection, None
        if connection is not None:
            await connection.close()  # closes the socket; waits for nothing from the server


class RecentUses:
    """The sessions this process recorded as used in the last TOUCH_EVERY seconds: GETs read
    through read-only connections, so a session's last use is written by a separate write
    (app.auth.note_use), and at most once per session and period, not on every request."""

    TOUCH_EVERY = 300.0
    KEEP = 50_000  # past this many, forget the ones recorded longer ago than TOUCH_EVERY

    def __init__(self) -> None:
        self.recorded: dict[str, float] = {}

    def mark(self, hashed: str) -> None:
        """The session was recorded as used just now (a new session is)."""
        self.recorded[hashed] = time.monotonic()

    def due(self, hashed: str) -> bool:
        """True (and marked) when the session's use should be recorded now."""
        now = time.monotonic()
        if now - self.recorded.get(hashed, -self.TOUCH_EVERY) < self.TOUCH_EVERY:
            return False
        if len(self.recorded) >= self.KEEP:
            cut = now - self.TOUCH_EVERY
            self.recorded = {h: t for h, t in self.recorded.items() if t >= cut}
        self.recorded[hashed] = now
        return True


SessionLookup = SQLiteLookup | PostgresLookup


def make_session_lookup(url: str, dialect: Dialect) -> SessionLookup:
    """The lookup for the app's database (dialect: the read engine's, for PostgreSQL)."""
    return SQLiteLookup(url) if url.startswith("sqlite") else PostgresLookup(url, dialect)
