"""The read path: GETs read SQLite through inline query_only connections, the request's
sessions are closed whatever happens, and a signed-in GET still sees a revoked session."""

import asyncio
from datetime import timedelta

import httpx
import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from app.auth import SESSION_LOOKUP, hash_token
from app.models import User
from app.models.base import utcnow
from tests.conftest import settle
from tests.factories import bearer_token, post_form, sign_in


def checked_out(app) -> int:  # type: ignore[no-untyped-def]
    engines = {app.state.engine, app.state.read_engine}
    return sum(engine.sync_engine.pool.checkedout() for engine in engines)


async def test_get_requests_cannot_write(app, settings):
    async with app.state.read_sessionmaker() as reader:
        with pytest.raises(DBAPIError, match=r"readonly|read-only"):
            await reader.execute(text("DELETE FROM entry"))
    lookup = app.state.session_lookup
    if settings.is_sqlite:
        with lookup.engine.connect() as conn, pytest.raises(DBAPIError, match="readonly"):
            conn.execute(text("DELETE FROM access_token"))
    else:
        await lookup.users(
            ["not-a-session"], utcnow(), utcnow()
        )  # its connection, made on first use
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            await lookup.connection.execute("DELETE FROM access_token")


async def test_every_request_gives_its_connections_back(app, client: httpx.AsyncClient, alice):
    await sign_in(client, "alice@example.com")
    await settle(app)
    before = checked_out(app)  # the test's own session (the alice fixture) holds one
    opened = []  # kept alive here, so the garbage collector cannot hand connections back

    def recording(maker):  # type: ignore[no-untyped-def]
        def make():  # type: ignore[no-untyped-def]
            opened.append(maker())
            return opened[-1]

        return make

    makers = {name: getattr(app.state, name) for name in ("sessionmaker", "read_sessionmaker")}
    for name, maker in makers.items():
        setattr(app.state, name, recording(maker))
    try:
        for url in ("/entries", "/dashboard", "/entries/999999", "/api/v1/stats/streaks"):
            await client.get(url)
        await post_form(client, "/entries", {"title": "A win"})
        await post_form(client, "/entries", {"title": ""})  # refused: shown again with why
        await client.post("/entries/1/delete")  # refused by CSRF before any session
        await settle(app)
    finally:
        for name, maker in makers.items():
            setattr(app.state, name, maker)
    assert len(opened) >= 6
    assert checked_out(app) == before
    assert not any(session.in_transaction() for session in opened)


async def test_a_signed_out_session_stops_working_on_the_very_next_get(
    client: httpx.AsyncClient, alice: User
):
    await sign_in(client, "alice@example.com")
    assert (await client.get("/entries")).status_code == 200
    cookie = client.cookies["sd_session"]
    await post_form(client, "/logout", {})
    client.cookies.set("sd_session", cookie)  # a copy of the old cookie, kept by a thief
    response = await client.get("/entries")
    assert response.status_code == 303 and response.headers["location"].startswith("/login")


async def test_the_session_lookup_of_gets_reads_what_the_orm_loads(app, client, alice):
    """GETs read the signed-in user through app.lookup, writes through the ORM: the same user,
    every field of the same value and type, on either backend."""
    await sign_in(client, "alice@example.com")
    hashed = hash_token(client.cookies["sd_session"])
    since = utcnow() - timedelta(days=1)
    fast = await app.state.session_lookup.users([hashed, "not-a-session"], since, since)
    async with app.state.sessionmaker() as session:
        params = {"hashes": [hashed, "not-a-session"], "since": since, "used_since": since}
        loaded = (await session.execute(SESSION_LOOKUP, params)).all()
    assert list(fast) == [token for _, token in loaded] == [hashed]
    for column in User.__table__.columns:
        expected = getattr(loaded[0][0], column.key)
        got = getattr(fast[hashed], column.key)
        assert got == expected and type(got) is type(expected), column.key
    later = utcnow() + timedelta(seconds=1)
    assert await app.state.session_lookup.users([hashed], later, since) == {}
    assert await app.state.session_lookup.users([hashed], since, later) == {}, "idle"


async def test_on_postgresql_requests_waiting_together_share_one_lookup_and_get_only_theirs(
    app, settings, client, alice, bob, monkeypatch
):
    """Lookups asked while one is in flight go out together as one statement; each request
    still gets only the users of its own tokens."""
    if settings.is_sqlite:
        pytest.skip("SQLite looks each session up on its own, with no round trip to share")
    tokens = {}
    for user in (alice, bob):
        async with httpx.AsyncClient(transport=client._transport, base_url=client.base_url) as c:
            tokens[user.email] = hash_token(await bearer_token(c, user.email))
    lookup = app.state.session_lookup
    statements = []
    query = lookup._query

    async def counted(hashes, since, used_since):  # type: ignore[no-untyped-def]
        statements.append(hashes)
        return await query(hashes, since, used_since)

    monkeypatch.setattr(lookup, "_query", counted)
    since = utcnow() - timedelta(days=1)
    asked = [[tokens["alice@example.com"]], [tokens["bob@example.com"]], ["not-a-session"]] * 7
    answers = await asyncio.gather(*(lookup.users(hashes, since, since) for hashes in asked))

    assert len(statements) == 1 and len(statements[0]) == 3
    for hashes, found in zip(asked, answers, strict=True):
        assert [user.email for user in found.values()] == [
            email for email, hashed in tokens.items() if hashes == [hashed]
        ]
    mine = answers[0][tokens["alice@example.com"]]
    assert mine is not answers[3][tokens["alice@example.com"]], "each request its own object"


async def test_on_postgresql_the_lookup_survives_its_connection_being_dropped(
    app, settings, session, client, alice
):
    """A server restart drops the lookup's kept connection: the next request reconnects at
    once and is answered, as pre_ping does for the pool (no 503 for the first one after)."""
    if settings.is_sqlite:
        pytest.skip("SQLite's lookup has no server connection to lose")
    await sign_in(client, "alice@example.com")
    assert (await client.get("/entries")).status_code == 200
    backend = app.state.session_lookup.connection.info.backend_pid
    await session.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": backend})
    await session.commit()

    assert (await client.get("/entries")).status_code == 200
    assert app.state.session_lookup.connection.info.backend_pid != backend
