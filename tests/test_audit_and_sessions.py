"""The audit trail ("recent activity" on /settings and its JSON API) and signing out other sessions."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import func, inspect, select

from app.models import AuditEvent
from app.services import audit
from app.services.audit import KEEP_EVENTS, Origin
from tests.conftest import settle
from tests.factories import PASSWORD, bearer_token, post_form, sign_in
from tests.security.test_account_deletion import rows_of
from tests.test_accounts_api import reset_token

HTMX = {"HX-Request": "true"}
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"
ACTIVITY = "/api/v1/users/me/activity"
REVOKE = "/api/v1/users/me/sessions/revoke-others"


@asynccontextmanager
async def another_device(app, ip: str = "198.51.100.4") -> AsyncIterator[httpx.AsyncClient]:  # type: ignore[no-untyped-def]
    """A second browser or script with its own cookies and address."""
    transport = httpx.ASGITransport(app=app, client=(ip, 52000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as other:
        yield other


async def kinds(session, user) -> list[str]:  # type: ignore[no-untyped-def]
    user_id = inspect(user).identity[0]  # without loading the (possibly expired) object
    stmt = (  # the trail's order, as the activity list shows it
        select(AuditEvent.kind)
        .where(AuditEvent.user_id == user_id)
        .order_by(AuditEvent.created_at, AuditEvent.id)  # type: ignore[arg-type]
    )
    return list((await session.execute(stmt)).scalars())


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_a_sign_in_shows_on_the_settings_page_with_address_and_device(client, app, alice):
    await sign_in(client, "alice@example.com")
    await settle(app)
    client.headers["User-Agent"] = FIREFOX
    async with another_device(app) as phone:
        phone.headers["User-Agent"] = FIREFOX
        await sign_in(phone, "alice@example.com")
        await settle(app)

    page = await client.get("/settings")

    assert page.status_code == 200
    assert "Recent activity" in page.text
    assert "Signed in from 198.51.100.4</span> · Firefox on Linux" in page.text
    assert "just now" in page.text
    assert "1 other session signed in" in page.text


async def test_the_activity_api_lists_events_newest_first_with_a_schema(client, app, alice):
    token = await bearer_token(client, "alice@example.com")
    await client.get("/api/v1/export?format=csv", headers=bearer(token))
    await settle(app)

    response = await client.get(ACTIVITY, headers=bearer(token))

    assert response.status_code == 200
    body = response.json()
    assert [item["kind"] for item in body["items"]] == ["export", "login"]
    assert body["items"][0]["summary"] == "Exported the diary (CSV) from 203.0.113.7"
    assert body["items"][1]["device"] == "a Python script"
    assert body["other_sessions"] == 0
    assert "/api/v1/users/me/activity" in (await client.get("/openapi.json")).json()["paths"]


async def test_a_failed_sign_in_is_recorded_for_a_real_account_only(client, app, session, alice):
    for email in ("alice@example.com", "nobody@example.com"):
        response = await client.post(
            "/api/v1/auth/bearer/login", data={"username": email, "password": "not the one"}
        )
        assert response.status_code == 400
    await settle(app)

    total = (await session.execute(select(func.count()).select_from(AuditEvent))).scalar_one()
    assert total == 1, "an unknown email leaves no row at all"
    assert await kinds(session, alice) == ["login_failed"]


async def test_sign_out_password_change_and_reset_are_recorded(
    client, app, session, alice, mailbox
):
    await sign_in(client, "alice@example.com")
    changed = await post_form(
        client,
        "/settings/password",
        {
            "current_password": PASSWORD,
            "password": "bright copper kettle",
            "confirm": "bright copper kettle",
        },
    )
    assert changed.status_code == 303
    await post_form(client, "/logout", {})
    async with another_device(app) as script:  # the JSON API, without the browser's cookies
        await script.post("/api/v1/auth/forgot-password", json={"email": "alice@example.com"})
        await settle(app)
        token = await reset_token(mailbox, "alice@example.com")
        reset = await script.post(
            "/api/v1/auth/reset-password", json={"token": token, "password": "quiet amber harbour"}
        )
    assert reset.status_code == 200
    await settle(app)

    assert await kinds(session, alice) == ["login", "password_changed", "logout", "password_reset"]


async def test_times_follow_the_users_time_zone(session, alice):
    alice.timezone = "Asia/Tokyo"
    at = datetime(2026, 11, 20, 23, 30, tzinfo=UTC)
    session.add(AuditEvent(user_id=alice.id, kind="login", created_at=at, ip="203.0.113.7"))
    await session.commit()

    [item] = await audit.recent(session=session, user=alice, now=at + timedelta(hours=2))

    assert item.local_time == "21 Nov 2026, 08:30"
    assert item.ago == "2 hours ago"
    assert item.summary == "Signed in from 203.0.113.7"


async def test_the_page_escapes_what_the_trail_holds(client, app, session, alice):
    hostile = '<script>alert(1)</script><b hx-get="/x">'
    session.add(AuditEvent(user_id=alice.id, kind="export", detail=hostile, ip="203.0.113.7"))
    await session.commit()
    await sign_in(client, "alice@example.com")

    page = await client.get("/settings")

    assert "<script>alert(1)" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text


async def test_bob_cannot_see_alices_activity(client, app, session, alice, bob):
    alice_token = await bearer_token(client, "alice@example.com")
    await client.get("/api/v1/export?format=json", headers=bearer(alice_token))
    async with another_device(app) as bobs:
        bob_token = await bearer_token(bobs, "bob@example.com")
        await settle(app)
        api = await bobs.get(ACTIVITY, headers=bearer(bob_token))
        await sign_in(bobs, "bob@example.com")
        page = await bobs.get("/settings")

    assert [item["kind"] for item in api.json()["items"]] == ["login"]
    assert "Exported the diary" not in page.text and "203.0.113.7" not in page.text


async def test_anon_gets_401_from_the_api_and_the_login_page_from_settings(client, app):
    assert (await client.get(ACTIVITY)).status_code == 401
    assert (await client.post(REVOKE)).status_code == 401
    page = await post_form(client, "/settings/sessions/revoke", {})
    assert page.status_code == 303 and page.headers["location"].startswith("/login")


async def test_signing_out_other_sessions_from_a_form_ends_them(client, app, session, alice):
    await sign_in(client, "alice@example.com")
    async with another_device(app) as laptop:
        await sign_in(laptop, "alice@example.com")
        assert (await laptop.get("/settings")).status_code == 200

        response = await post_form(client, "/settings/sessions/revoke", {})

        assert response.status_code == 303
        assert response.headers["location"] == "/settings#activity-h"
        page = await client.get("/settings")
        assert "Signed out 1 other session." in page.text
        assert "No other session is signed in." in page.text
        assert (await laptop.get("/settings")).headers["location"].startswith("/login")
    await settle(app)
    assert (await kinds(session, alice))[-1] == "sessions_revoked"


async def test_signing_out_other_sessions_with_htmx_gives_the_fragment(client, app, alice):
    await sign_in(client, "alice@example.com")
    async with another_device(app) as phone:
        phone_token = await bearer_token(phone, "alice@example.com")

        response = await post_form(client, "/settings/sessions/revoke", {}, headers=HTMX)

        assert response.status_code == 200
        assert "<html" not in response.text and 'id="activity"' in response.text
        assert "Signed out 1 other session." in response.text
        assert "Signed out the other sessions (1 session) from 203.0.113.7" in response.text
        assert (await phone.get(ACTIVITY, headers=bearer(phone_token))).status_code == 401
    assert (await client.get("/settings")).status_code == 200


async def test_the_api_signs_out_every_other_token_but_its_own(client, app, alice):
    first = await bearer_token(client, "alice@example.com")
    async with another_device(app) as other:
        second = await bearer_token(other, "alice@example.com")
        assert (await client.get(ACTIVITY, headers=bearer(first))).json()["other_sessions"] == 1

        response = await client.post(REVOKE, headers=bearer(first))

        assert response.status_code == 200 and response.json() == {"revoked": 1}
        assert (await other.get(ACTIVITY, headers=bearer(second))).status_code == 401
    assert (await client.get(ACTIVITY, headers=bearer(first))).status_code == 200
    again = await client.post(REVOKE, headers=bearer(first))
    assert again.json() == {"revoked": 0}


async def test_the_trail_keeps_200_events_and_90_days(session, alice):
    now = datetime.now(UTC)
    session.add(AuditEvent(user_id=alice.id, kind="login", created_at=now - timedelta(days=91)))
    for minutes in range(KEEP_EVENTS + 10, 0, -1):
        session.add(
            AuditEvent(user_id=alice.id, kind="export", created_at=now - timedelta(minutes=minutes))
        )
    await session.commit()

    await audit.record(session=session, user_id=alice.id, kind="logout", origin=Origin())

    rows = await kinds(session, alice)
    assert len(rows) == KEEP_EVENTS
    assert "login" not in rows, "the 91-day-old event is gone"
    assert rows[-1] == "logout"


async def test_deleting_the_account_takes_its_trail_along(client, app, session, alice, caplog):
    token = await bearer_token(client, "alice@example.com")
    await settle(app)
    assert (await rows_of(session, alice.id))["audit_event"] == 1
    caplog.set_level("INFO", logger="app.accounts")

    response = await client.request(
        "DELETE", "/api/v1/users/me", json={"password": PASSWORD}, headers=bearer(token)
    )

    assert response.status_code == 204
    assert (await rows_of(session, alice.id))["audit_event"] == 0
    [line] = [r for r in caplog.records if r.getMessage() == "account deleted"]
    assert line.user_id == str(alice.id)  # type: ignore[attr-defined]
    assert "alice@example.com" not in caplog.text
