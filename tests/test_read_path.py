"""The read path: GETs read through connections that refuse writes, the request's sessions
are closed whatever happens, and a signed-in GET still sees a revoked session."""

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from app.db import sync_engine
from app.models import User
from tests.conftest import settle
from tests.factories import post_form, sign_in


def checked_out(app) -> int:  # type: ignore[no-untyped-def]
    engines = {app.state.engine, app.state.read_engine}
    return sum(sync_engine(engine).pool.checkedout() for engine in engines)


async def test_get_requests_cannot_write(app):
    async with app.state.read_sessionmaker() as reader:
        with pytest.raises(DBAPIError, match=r"readonly|read-only"):
            await reader.execute(text("DELETE FROM access_token"))


async def test_a_get_signs_in_through_the_read_engine(app, client: httpx.AsyncClient, alice):
    await sign_in(client, "alice@example.com")
    await settle(app)
    used = []
    maker = app.state.read_sessionmaker

    def recording():  # type: ignore[no-untyped-def]
        used.append(maker())
        return used[-1]

    app.state.read_sessionmaker = recording
    try:
        response = await client.get("/api/v1/users/me")
    finally:
        app.state.read_sessionmaker = maker
    assert response.status_code == 200 and response.json()["email"] == "alice@example.com"
    assert len(used) == 1


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
