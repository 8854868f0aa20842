"""SECURITY.md rows 23-25: a server killed mid-write, a database that goes away, mail that is down.

Row 23 needs a real server to kill (tests/live_server.py); rows 24 and 25 run in process.
"""

import asyncio
import contextlib
import random
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
import pytest
from alembic import command
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlmodel import col

from app.db import CONNECT_TIMEOUT_SECONDS, dispose
from app.main import create_app
from app.models import EmailCode, User
from tests.conftest import Mailbox, alembic_config, mail_down, make_settings, settle
from tests.factories import PASSWORD, bearer_token, make_user, post_form, sign_in
from tests.live_server import LiveServer, fresh_database

HTMX = {"HX-Request": "true"}
HTML = {"Accept": "text/html"}


# Row 23 -------------------------------------------------------------------------------------


@dataclass
class Acknowledged:
    """What the server promised: entry id -> title, for every 201 that reached a writer."""

    entries: dict[int, str]
    repeated_ids: list[int]
    unanswered: int = 0  # writes cut off by a kill
    refused: list[int] = field(default_factory=list)  # any answer but 201


async def write_until(stop: asyncio.Event, url: str, token: str, writer: int) -> Acknowledged:
    """POST entries as fast as the server takes them; a refused or cut write is not retried."""
    done = Acknowledged({}, [])
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=10) as client:
        n = 0
        while not stop.is_set():
            n += 1
            title = f"writer {writer} win {n}"
            try:
                response = await client.post("/api/v1/entries", json={"title": title})
            except httpx.ConnectError:  # the server is down: retry until it is back
                await asyncio.sleep(0.05)
                continue
            except httpx.TransportError:  # it died with the write in flight: never promised
                done.unanswered += 1
                continue
            if response.status_code != 201:
                done.refused.append(response.status_code)
                continue
            entry_id = response.json()["id"]
            if entry_id in done.entries:
                done.repeated_ids.append(entry_id)
            done.entries[entry_id] = title
    return done


def kill_and_restart(server: LiveServer, times: int) -> None:
    for _ in range(times):
        time.sleep(random.uniform(0.2, 0.8))
        server.kill()
        server.start()


def stored_entries(database_url: str) -> dict[int, str]:
    """Every entry in the database, read behind the app's back."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        with contextlib.closing(sqlite3.connect(str(url.database))) as db:
            return dict(db.execute("SELECT id, title FROM entry").fetchall())
    with psycopg.connect(url.set(drivername="postgresql").render_as_string(False)) as db:
        return dict(db.execute("SELECT id, title FROM entry").fetchall())


def sqlite_checks(database_url: str, title: str) -> tuple[str, str, list[str]]:
    """PRAGMA integrity_check, the FTS index's own check and a search for one title."""
    with contextlib.closing(sqlite3.connect(str(make_url(database_url).database))) as db:
        integrity = db.execute("PRAGMA integrity_check").fetchone()[0]
        try:
            db.execute("INSERT INTO entry_fts(entry_fts) VALUES('integrity-check')")
            fts = "ok"
        except sqlite3.DatabaseError as error:
            fts = str(error)
        query = '"' + title.replace('"', '""') + '"'
        found = [
            row[0]
            for row in db.execute(
                "SELECT entry.title FROM entry_fts JOIN entry ON entry.id = entry_fts.rowid"
                " WHERE entry_fts MATCH ?",
                (query,),
            )
        ]
    return integrity, fts, found


async def test_row23_killing_the_server_20_times_mid_write_loses_no_acknowledged_write(
    db_url: str, mailbox: Mailbox, tmp_path: Path
):
    # SQLite runs in WAL mode with synchronous=NORMAL (app/db.py): a commit is in the WAL
    # before the answer goes out, which survives the process dying; only a power cut could
    # lose the last commits. This test kills processes, not the machine.
    with fresh_database(db_url, tmp_path) as url:
        server = LiveServer(database_url=url, smtp_port=mailbox.port)
        try:
            server.start()
            server.create_user("alice@example.com")
            token = server.bearer_token("alice@example.com")
            stop = asyncio.Event()
            writers = [
                asyncio.create_task(write_until(stop, server.url, token, w)) for w in range(6)
            ]
            try:
                await asyncio.to_thread(kill_and_restart, server, 20)
                await asyncio.sleep(0.5)  # a last few writes on the surviving server
            finally:
                stop.set()
                results = await asyncio.gather(*writers)
        finally:
            server.kill()
        acknowledged = {i: t for r in results for i, t in r.entries.items()}
        stored = stored_entries(url)
        assert [i for r in results for i in r.repeated_ids] == []
        assert [code for r in results for code in r.refused] == [], "a restarted server erred"
        assert sum(len(r.entries) for r in results) == len(acknowledged), "an id was given twice"
        assert len(acknowledged) > 50, f"only {len(acknowledged)} writes got through"
        assert sum(r.unanswered for r in results) >= 20, "the kills fell between writes"
        missing = {i: t for i, t in acknowledged.items() if stored.get(i) != t}
        assert missing == {}, f"{len(missing)} of {len(acknowledged)} acknowledged writes lost"
        if url.startswith("sqlite"):
            last = acknowledged[max(acknowledged)]
            assert sqlite_checks(url, last) == ("ok", "ok", [last])


# Row 24 -------------------------------------------------------------------------------------


class DatabaseProxy:
    """127.0.0.1:port -> the PostgreSQL server; cut() closes the listener and every connection.

    hang() instead accepts connections and never answers: a database that hangs.
    """

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.server: asyncio.Server | None = None
        self.port = 0
        self.open: set[asyncio.StreamWriter] = set()
        self.answering = True

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _accept(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        self.open.add(client_w)
        if not self.answering:
            return  # held open, never forwarded
        try:
            server_r, server_w = await asyncio.open_connection(*self.target)
        except OSError:
            client_w.close()
            return
        self.open.add(server_w)
        await asyncio.gather(self._pipe(client_r, server_w), self._pipe(server_r, client_w))

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    def _drop_connections(self) -> None:
        for writer in self.open:
            writer.transport.abort()
        self.open.clear()

    async def cut(self) -> None:
        assert self.server is not None
        self.server.close()
        self._drop_connections()
        await self.server.wait_closed()

    async def hang(self) -> None:
        self._drop_connections()
        self.answering = False

    async def restore(self) -> None:
        self.answering = True
        if self.server is None or not self.server.is_serving():
            await self.start()


@dataclass
class Outage:
    """An app whose database can be taken away (cut) and given back (restore)."""

    app: FastAPI
    cut: Callable[[], Awaitable[None]]
    restore: Callable[[], Awaitable[None]]
    hang: Callable[[], Awaitable[None]]


@contextlib.asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[FastAPI]:
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def outage(
    app: FastAPI, db_url: str, mailbox: Mailbox, tmp_path: Path
) -> AsyncIterator[Outage]:
    """PostgreSQL through a proxy that can be cut; SQLite in a directory that can vanish.

    The PostgreSQL app shares the test database (the `app` fixture empties it afterwards).
    """
    if not db_url.startswith("sqlite"):
        url = make_url(db_url)
        proxy = DatabaseProxy(url.host or "127.0.0.1", url.port or 5432)
        await proxy.start()
        proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(False)
        async with running(create_app(make_settings(proxied, mailbox.port))) as down:
            yield Outage(down, proxy.cut, proxy.restore, proxy.hang)
        await proxy.cut()
        return

    # SQLite has no server to stop. Its equivalent of a database that went away is storage
    # that went away: the file's directory replaced by something that cannot be opened.
    # A pooled connection would keep reading the old inode, so the pool is closed too, as
    # the lost disk would fail those handles. Its equivalent of a database that hangs is
    # another process holding the write lock (a long import): writers wait busy_timeout.
    folder = tmp_path / "data"
    folder.mkdir()
    path = folder / "diary.sqlite3"
    await asyncio.to_thread(command.upgrade, alembic_config(f"sqlite+aiosqlite:///{path}"), "head")
    holders: list[sqlite3.Connection] = []
    async with running(
        create_app(make_settings(f"sqlite+aiosqlite:///{path}", mailbox.port))
    ) as down:

        async def cut() -> None:
            folder.rename(tmp_path / "away")
            folder.write_text("not a directory")
            await dispose(down.state.engine)

        async def hang() -> None:
            holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            holder.execute("BEGIN IMMEDIATE")  # the write lock, held until restore()
            holders.append(holder)

        async def restore() -> None:
            for holder in holders:
                holder.close()
            if folder.is_file():
                folder.unlink()
                (tmp_path / "away").rename(folder)

        try:
            yield Outage(down, cut, restore, hang)
        finally:
            await restore()


@contextlib.asynccontextmanager
async def signed_in(outage: Outage) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    """Alice in a browser (session cookie) and in a script (bearer token) of the outage app."""
    async with outage.app.state.sessionmaker() as session:
        await make_user(session, "alice@example.com")
    transport = httpx.ASGITransport(app=outage.app)
    async with (
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as browser,
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as script,
    ):
        await sign_in(browser, "alice@example.com")
        script.headers["Authorization"] = (
            f"Bearer {await bearer_token(script, 'alice@example.com')}"
        )
        await settle(outage.app)  # work the sign-ins started has given its connection back
        yield browser, script


async def timed(request: Awaitable[httpx.Response]) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = await request
    return response, time.monotonic() - started


async def three_answers(
    browser: httpx.AsyncClient, script: httpx.AsyncClient
) -> tuple[tuple[httpx.Response, float], ...]:
    """The list page, the list API and the health check, asked at the same time."""
    return tuple(
        await asyncio.gather(
            timed(browser.get("/entries", headers=HTML)),
            timed(script.get("/api/v1/entries")),
            timed(script.get("/healthz")),
        )
    )


async def test_row24_with_the_database_down_pages_api_and_healthz_answer_503_quickly(
    outage: Outage,
):
    async with signed_in(outage) as (browser, script):
        await outage.cut()
        (page, page_s), (api, api_s), (health, health_s) = await three_answers(browser, script)

    assert page.status_code == 503
    assert page.headers["content-type"].startswith("text/html")
    assert "We will be back in a moment" in page.text
    assert "Your entries are safe" in page.text
    assert "Traceback" not in page.text and "OperationalError" not in page.text
    assert page.headers["retry-after"] == "30"
    assert api.status_code == 503
    assert api.json() == {"detail": "DATABASE_UNAVAILABLE"}
    assert api.headers["retry-after"] == "30"
    assert health.status_code == 503
    assert health.json() == {"status": "error", "database": "unavailable"}
    assert max(page_s, api_s, health_s) < 10, "nobody waits long for a database that is down"


async def test_row24_the_app_recovers_by_itself_when_the_database_returns(outage: Outage):
    async with signed_in(outage) as (browser, script):
        await outage.cut()
        down = await three_answers(browser, script)
        await outage.restore()
        (page, _), (api, _), (health, _) = await three_answers(browser, script)
        created = await script.post("/api/v1/entries", json={"title": "Back online"})

    assert [answer.status_code for answer, _ in down] == [503, 503, 503]
    assert page.status_code == 200
    assert "Your wins" in page.text
    assert api.status_code == 200
    assert health.json()["status"] == "ok" and health.json()["database"] == "ok"
    assert created.status_code == 201


async def test_row24_a_database_that_hangs_gets_a_503_within_the_connect_timeout(
    outage: Outage, db_url: str
):
    """PostgreSQL that never answers: every request. SQLite whose write lock another process
    holds: the write waits busy_timeout, while reads go on (WAL)."""
    async with signed_in(outage) as (browser, script):
        await outage.hang()
        answers = await asyncio.gather(
            timed(browser.get("/entries", headers=HTML)),
            timed(script.post("/api/v1/entries", json={"title": "Held up"})),
            timed(script.get("/healthz")),
        )
        await outage.restore()
        retried = await script.post("/api/v1/entries", json={"title": "Held up"})
    (page, _), (write, _), (health, _) = answers
    reads = 200 if db_url.startswith("sqlite") else 503
    assert [page.status_code, write.status_code, health.status_code] == [reads, 503, reads]
    assert write.json() == {"detail": "DATABASE_UNAVAILABLE"}
    assert max(seconds for _, seconds in answers) < CONNECT_TIMEOUT_SECONDS + 5, "a bounded wait"
    assert retried.status_code == 201


# Row 25 -------------------------------------------------------------------------------------


async def test_row25_with_mail_down_a_page_registration_succeeds_and_the_user_can_resend(
    client, app, mailbox: Mailbox, session
):
    with mail_down(app):
        registered = await post_form(
            client, "/register", {"email": "sam@example.com", "password": PASSWORD}
        )
        await settle(app)
    assert registered.status_code == 303
    assert (await session.execute(select(User).filter_by(email="sam@example.com"))).scalar_one()
    status = await client.get("/verify/status?email=sam@example.com&n=1", headers=HTMX)
    assert "No mail server answered" in status.text, "development points at /dev/mail"
    assert "hx-trigger" not in status.text, "polling stops once the answer is known"

    await post_form(client, "/verify/resend", {"email": "sam@example.com"})
    await settle(app)
    code = mailbox.code_for("sam@example.com")
    assert (await session.execute(select(col(EmailCode.mail_failed)))).scalar_one() is False
    assert (
        await post_form(client, "/verify", {"email": "sam@example.com", "code": code})
    ).status_code == 303


async def test_row25_with_mail_down_an_api_registration_keeps_the_account_for_a_new_code(
    client, app, mailbox: Mailbox, session
):
    with mail_down(app):
        registered = await client.post(
            "/api/v1/auth/register", json={"email": "tia@example.com", "password": PASSWORD}
        )
        await settle(app)
    assert registered.status_code == 202
    assert mailbox.to("tia@example.com") == []
    account = (
        await session.execute(
            select(col(User.id), col(User.is_verified)).filter_by(email="tia@example.com")
        )
    ).one()
    assert account.is_verified is False
    failed = select(col(EmailCode.mail_failed), col(EmailCode.code_hash)).filter_by(
        user_id=account.id
    )
    first = (await session.execute(failed)).one()
    assert first.mail_failed is True

    asked = await client.post("/api/v1/auth/request-code", json={"email": "tia@example.com"})
    await settle(app)
    assert asked.status_code == 202
    code = mailbox.code_for("tia@example.com")
    fresh = (await session.execute(failed)).one()
    assert fresh.mail_failed is False
    assert fresh.code_hash != first.code_hash, "a fresh code replaced the one never delivered"
    verified = await client.post(
        "/api/v1/auth/verify", json={"email": "tia@example.com", "code": code}
    )
    assert verified.status_code == 200
    assert await bearer_token(client, "tia@example.com"), "the password given at sign-up works"
