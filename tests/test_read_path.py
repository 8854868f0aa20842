"""The read path: GETs read SQLite through inline query_only connections, the request's
sessions are closed whatever happens, and a signed-in GET still sees a revoked session."""

from datetime import timedelta

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from app.auth import SESSION_ROWS, USER_COLUMNS, hash_token
from app.models import User
from app.models.base import utcnow
from tests.conftest import settle
from tests.factories import post_form, sign_in


def checked_out(app) -> int:  # type: ignore[no-untyped-def]
    engines = {app.state.engine, app.state.read_engine}
    return sum(engine.sync_engine.pool.checkedout() for engine in engines)


async def test_get_requests_cannot_write(app, settings):
    async with app.state.read_sessionmaker() as reader:
        with pytest.raises(DBAPIError, match=r"readonly|read-only"):
            await reader.execute(text("DELETE FROM entry"))
    if settings.is_sqlite:
        with (
            app.state.session_lookup.engine.connect() as conn,
            pytest.raises(DBAPIError, match="readonly"),
        ):
            conn.execute(text("DELETE FROM access_token"))


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


async def test_the_inline_session_lookup_reads_what_sqlalchemy_reads(app, settings, client, alice):
    if not settings.is_sqlite:
        pytest.skip("PostgreSQL looks sessions up through SQLAlchemy")
    await sign_in(client, "alice@example.com")
    hashed = hash_token(client.cookies["sd_session"])
    since = utcnow() - timedelta(days=1)
    fast = app.state.session_lookup.users([hashed, "not-a-session"], since)
    async with app.state.read_sessionmaker() as reader:
        params = {"hashes": [hashed, "not-a-session"], "since": since}
        rows = (await reader.execute(SESSION_ROWS, params)).all()
    assert list(fast) == [row.token for row in rows] == [hashed]
    for name in USER_COLUMNS:
        expected = rows[0]._mapping[name]
        assert getattr(fast[hashed], name) == expected and type(
            getattr(fast[hashed], name)
        ) is type(expected), name
    assert app.state.session_lookup.users([hashed], utcnow() + timedelta(seconds=1)) == {}
