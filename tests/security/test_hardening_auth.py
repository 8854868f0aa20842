"""SECURITY.md rows 29, 33, 36 (NUL and multipart), 38 and 40: redirects stay on the site,
emailed links die with a change, pending and look-alike accounts, session hygiene."""

import asyncio
import json
import os
import subprocess
import sys
import uuid
from datetime import timedelta
from urllib.parse import urljoin, urlsplit

import httpx
import pytest
from alembic import command
from itsdangerous.url_safe import URLSafeSerializer
from sqlalchemy import create_engine, func, select, text, update

from app.auth import hash_token
from app.config import ROOT
from app.models import AccessToken, Entry, User
from app.models.base import utcnow
from tests.conftest import Mailbox, alembic_config, settle
from tests.factories import PASSWORD, bearer_token, csrf_token, make_user, post_form, sign_in
from tests.test_migrations import empty_database  # noqa: F401 (the fixture, asked for by name)

HTMX = {"HX-Request": "true"}
SITE = "http://testserver/"

# Each would lead a browser off the site if it were sent as it is (browsers drop tab, CR
# and LF), or breaks the header it goes into. (//host, \\host and schemes: see
# tests/test_accounts_pages.py; the same rule refuses them.)
OFF_SITE = [
    "/\t/evil.example",
    "/\n/evil.example",
    "/\r/evil.example",
    "/\x0b/evil.example",
    "/\x00/evil.example",
    "/ /evil.example",
    "/\x7f/evil.example",
    "/\r\nSet-Cookie: a=b",
]


def where_a_browser_goes(location: str) -> str:
    """The host a browser would go to: it strips tab, CR and LF and reads \\ as /."""
    cleaned = location.replace("\t", "").replace("\r", "").replace("\n", "").replace("\\", "/")
    return urlsplit(urljoin(SITE, cleaned.strip())).netloc


def target(response: httpx.Response) -> str:
    location = response.headers.get("hx-redirect") or response.headers["location"]
    assert location.isascii() and location.isprintable(), location
    assert where_a_browser_goes(location) == "testserver", location
    return location


@pytest.mark.parametrize("htmx", [False, True], ids=["form", "htmx"])
@pytest.mark.parametrize("next_url", OFF_SITE)
async def test_row29_sign_in_never_sends_the_browser_off_site(client, alice, next_url, htmx):
    response = await post_form(
        client,
        "/login",
        {"email": "alice@example.com", "password": PASSWORD, "next": next_url},
        headers=HTMX if htmx else {},
    )
    assert response.status_code == (200 if htmx else 303)
    assert target(response) == "/"
    assert "sd_session" in response.cookies, "the sign-in worked"


# A NUL in a query is refused before any route (row 36): these reach /login as GETs.
IN_A_QUERY = [url for url in OFF_SITE if "\x00" not in url]


@pytest.mark.parametrize("next_url", IN_A_QUERY)
async def test_row29_a_signed_in_visit_to_the_sign_in_page_stays_on_site(client, alice, next_url):
    await sign_in(client, "alice@example.com")
    response = await client.get("/login", params={"next": next_url})
    assert response.status_code == 303
    assert target(response) == "/"


@pytest.mark.parametrize("next_url", IN_A_QUERY)
async def test_row29_the_sign_in_form_only_carries_a_local_next(client, next_url):
    page = await client.get("/login", params={"next": next_url})
    assert page.status_code == 200
    assert 'name="next" value="/"' in page.text


async def test_row29_the_theme_switch_returns_only_to_a_local_page(client, alice):
    await sign_in(client, "alice@example.com")
    response = await post_form(
        client,
        "/settings/theme",
        {"theme": "dark"},
        headers={"Referer": SITE + "\t/evil.example"},
    )
    assert response.status_code == 303
    assert target(response) == "/settings"


async def test_row29_local_targets_are_escaped_into_the_header(client, alice):
    response = await post_form(
        client,
        "/login",
        {"email": "alice@example.com", "password": PASSWORD, "next": "/entries?q=café&tag=über"},
        headers=HTMX,
    )
    assert response.headers["hx-redirect"] == "/entries?q=caf%C3%A9&tag=%C3%BCber"
    client.cookies.clear()
    plain = await post_form(
        client, "/login", {"email": "alice@example.com", "password": PASSWORD, "next": "/dashboard"}
    )
    assert target(plain) == "/dashboard"


# Row 36: NUL in a query, multipart with a CSRF header.

NUL_QUERIES = [
    ("/api/v1/entries?q=%00", "q"),
    ("/api/v1/entries?tag=run%00", "tag"),
    ("/api/v1/entries?q=a&tag=%00b", "tag"),
    ("/entries?q=win%00", "q"),
    ("/api/v1/stats/streaks?x%00=1", "x\x00"),
]


@pytest.mark.parametrize(("url", "name"), NUL_QUERIES)
async def test_row36_a_nul_in_any_query_parameter_is_a_422_that_says_why(client, alice, url, name):
    headers = {"Authorization": f"Bearer {await bearer_token(client, 'alice@example.com')}"}
    response = await client.get(url, headers=headers)
    assert response.status_code == 422
    [error] = response.json()["detail"]  # the shape of every other 422 of the API
    assert error["loc"] == ["query", name] and "NUL character" in error["msg"]


async def test_row36_a_page_with_a_nul_in_its_query_gets_a_422_page(client, alice):
    await sign_in(client, "alice@example.com")
    response = await client.get("/entries?q=%00", headers={"Accept": "text/html"})
    assert response.status_code == 422
    assert "NUL character" in response.text and "<html" in response.text
    fine = await client.get("/entries?q=%2500")  # a literal "%00" is just text
    assert fine.status_code == 200


JRNL = json.dumps({"entries": [{"title": "A", "body": "B", "date": "2024-03-01", "time": "09:00"}]})


async def entry_count(session) -> int:  # type: ignore[no-untyped-def]
    return int((await session.execute(select(func.count()).select_from(Entry))).scalar_one())


async def test_row36_multipart_with_a_csrf_header_is_checked_a_403_when_bad(client, session, alice):
    await sign_in(client, "alice@example.com")

    async def upload(header: bytes) -> httpx.Response:
        return await client.post(
            "/api/v1/import",
            files={"file": ("a.json", JRNL.encode())},
            headers={"X-CSRFToken": header, "Origin": SITE[:-1]},
        )

    for bad in (b"forged", b"", "é".encode()):
        response = await upload(bad)
        assert response.status_code == 403, bad
        assert response.json()["detail"] == "CSRF_FAILED"
    assert await entry_count(session) == 0
    good = await upload((await csrf_token(client)).encode())
    assert good.status_code == 200, good.text
    assert good.json()["imported"] is True and await entry_count(session) == 1


async def test_row36_a_protected_multipart_form_without_cookies_is_a_403(client, alice):
    response = await client.post(
        "/login", files={"file": ("a.txt", b"x")}, data={"email": "alice@example.com"}
    )
    assert response.status_code == 403


# Row 40: the Authorization header alone, a new CSRF token at sign-in, an idle limit.


@pytest.mark.parametrize("authorization", ["Bearer junk", "Basic YTpi", "Bearer", "junk"])
async def test_row40_an_authorization_header_is_the_only_credential_read(
    client, session, alice, authorization
):
    await sign_in(client, "alice@example.com")
    assert (await client.get("/api/v1/users/me")).status_code == 200
    junk = {"Authorization": authorization}
    assert (await client.get("/api/v1/users/me", headers=junk)).status_code == 401
    page = await client.get("/settings", headers=junk)
    assert page.status_code == 303 and page.headers["location"].startswith("/login")
    write = await client.post(
        "/api/v1/entries", json={"title": "Planted"}, headers={**junk, "Origin": SITE[:-1]}
    )
    assert write.status_code in (401, 403)
    assert await entry_count(session) == 0


async def test_row40_a_good_bearer_token_wins_over_the_cookie_beside_it(client, alice, bob):
    token = await bearer_token(client, "bob@example.com")
    await sign_in(client, "alice@example.com")
    me = await client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
    assert me.json()["email"] == "bob@example.com"


def signed(settings, token: str) -> bool:  # type: ignore[no-untyped-def]
    URLSafeSerializer(settings.secret_key).loads(token, "csrftoken")
    return True


async def test_row40_the_csrf_cookie_rotates_at_sign_in_on_the_page(client, settings, alice):
    before = await csrf_token(client)
    response = await sign_in(client, "alice@example.com")
    after = response.cookies["csrftoken"]
    assert after != before and signed(settings, after)
    assert client.cookies["csrftoken"] == after
    stale = await client.post(
        "/entries", data={"csrftoken": before, "title": "Forged"}, headers={"Origin": SITE[:-1]}
    )
    assert stale.status_code == 403, "a token known before the sign-in is worth nothing"
    fresh = await post_form(client, "/entries", {"title": "Mine"})
    assert fresh.status_code == 303


async def test_row40_the_csrf_cookie_rotates_at_the_api_cookie_login(client, settings, alice):
    before = await csrf_token(client)
    response = await client.post(
        "/api/v1/auth/cookie/login",
        data={"username": "alice@example.com", "password": PASSWORD},
        headers={"X-CSRFToken": before},
    )
    assert response.status_code == 204
    after = response.cookies["csrftoken"]
    assert after != before and signed(settings, after)
    assert "sd_session" in response.cookies


async def idle_for(session, client, delta: timedelta) -> None:  # type: ignore[no-untyped-def]
    hashed = hash_token(client.cookies["sd_session"])
    await session.execute(
        update(AccessToken)
        .where(AccessToken.token == hashed)  # type: ignore[arg-type]
        .values(last_used_at=utcnow() - delta)
    )
    await session.commit()


async def last_used(session, client):  # type: ignore[no-untyped-def]
    hashed = hash_token(client.cookies["sd_session"])
    stmt = select(AccessToken.last_used_at).where(AccessToken.token == hashed)  # type: ignore[arg-type]
    session.expire_all()
    return (await session.execute(stmt)).scalar_one()


async def test_row40_a_session_idle_longer_than_the_setting_is_over(
    client, session, settings, alice
):
    assert settings.session_idle_seconds == 7 * 24 * 3600
    assert settings.session_lifetime_seconds == 14 * 24 * 3600
    await sign_in(client, "alice@example.com")
    await idle_for(session, client, timedelta(days=6, hours=23))
    assert (await client.get("/settings")).status_code == 200
    await idle_for(session, client, timedelta(days=7, minutes=1))
    page = await client.get("/settings")  # a GET: the read-only lookup
    assert page.status_code == 303 and page.headers["location"].startswith("/login")
    assert (await client.get("/api/v1/users/me")).status_code == 401
    write = await post_form(client, "/settings/theme", {"theme": "dark"})  # the ORM lookup
    assert write.status_code == 303 and write.headers["location"].startswith("/login")
    api_write = await client.post(
        "/api/v1/entries",
        json={"title": "Late"},
        headers={"X-CSRFToken": client.cookies["csrftoken"]},
    )
    assert api_write.status_code == 401


async def test_row40_use_is_recorded_at_most_every_few_minutes(app, client, session, alice):
    await sign_in(client, "alice@example.com")
    hashed = hash_token(client.cookies["sd_session"])
    uses = app.state.recent_uses
    await idle_for(session, client, timedelta(days=3))
    await client.get("/settings")
    await settle(app)
    assert utcnow() - await last_used(session, client) > timedelta(days=2), "signed in just now"

    uses.recorded[hashed] -= uses.TOUCH_EVERY  # a few minutes later
    await client.get("/settings")
    await settle(app)
    assert utcnow() - await last_used(session, client) < timedelta(minutes=1)

    await idle_for(session, client, timedelta(days=3))
    await post_form(client, "/settings/theme", {"theme": "dark"})
    await client.get("/api/v1/users/me")
    await settle(app)
    assert utcnow() - await last_used(session, client) > timedelta(days=2), "once a period"

    await idle_for(session, client, timedelta(days=6))
    uses.recorded[hashed] -= uses.TOUCH_EVERY
    await post_form(client, "/settings/theme", {"theme": "light"})
    await settle(app)
    assert utcnow() - await last_used(session, client) < timedelta(minutes=1), "writes too"


@pytest.mark.parametrize("where", ["header", "form"])
async def test_row36_a_csrf_token_that_is_not_ascii_is_a_403_not_a_crash(
    client, session, alice, where
):
    await sign_in(client, "alice@example.com")
    forged = "tökén"
    response = await client.post(
        "/entries",
        data={"title": "Planted", **({"csrftoken": forged} if where == "form" else {})},
        headers={
            "Origin": SITE[:-1],
            **({"X-CSRFToken": forged.encode()} if where == "header" else {}),
        },
    )
    assert response.status_code == 403
    assert await entry_count(session) == 0


# Row 33: emailed links die when the email or the password changes.

NEW_PASSWORD = "bright copper kettle whistles"


async def reset_link(client, app, mailbox: Mailbox, email: str) -> str:  # type: ignore[no-untyped-def]
    mailbox.messages.clear()
    csrf = {"X-CSRFToken": client.cookies.get("csrftoken", "")}
    asked = await client.post("/api/v1/auth/forgot-password", json={"email": email}, headers=csrf)
    assert asked.status_code == 202
    await settle(app)
    return httpx.URL(mailbox.link_for(email, "/reset-password")).params["token"]


async def reset(client, token: str) -> httpx.Response:  # type: ignore[no-untyped-def]
    return await client.post(
        "/api/v1/auth/reset-password",
        json={"token": token, "password": NEW_PASSWORD},
        headers={"X-CSRFToken": client.cookies.get("csrftoken", "")},
    )


async def test_row33_reset_links_die_when_the_email_or_the_password_changes(
    client, app, mailbox, alice
):
    token = await reset_link(client, app, mailbox, "alice@example.com")
    bearer = {"Authorization": f"Bearer {await bearer_token(client, 'alice@example.com')}"}
    asked = await client.patch(
        "/api/v1/users/me",
        json={"email": "alice@new.example", "current_password": PASSWORD},
        headers=bearer,
    )
    assert asked.status_code == 202
    await settle(app)
    code = mailbox.code_for("alice@new.example")
    confirmed = await client.post(
        "/api/v1/users/me/email/confirm", json={"code": code}, headers=bearer
    )
    assert confirmed.status_code == 200

    used = await reset(client, token)  # the old mailbox keeps the link it was sent
    assert used.status_code == 400 and used.json()["detail"] == "RESET_PASSWORD_BAD_TOKEN"
    await sign_in(client, "alice@new.example")  # the password is still the owner's
    page = await post_form(client, "/reset-password", {"token": token, "password": NEW_PASSWORD})
    assert page.status_code == 422 and "invalid, used or expired" in page.text

    # The same for a change of password, in either way: by the settings or by a reset.
    token = await reset_link(client, app, mailbox, "alice@new.example")
    changed = await post_form(
        client,
        "/settings/password",
        {"current_password": PASSWORD, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
    )
    assert changed.status_code == 303
    assert (await reset(client, token)).status_code == 400
    old_link = await reset_link(client, app, mailbox, "alice@new.example")
    other_link = await reset_link(client, app, mailbox, "alice@new.example")
    assert (await reset(client, other_link)).status_code == 200
    assert (await reset(client, old_link)).status_code == 400


# Row 38: pending accounts keep their first password; one account per mailbox, however spelt.


async def register_api(client, email: str, password: str) -> httpx.Response:  # type: ignore[no-untyped-def]
    return await client.post("/api/v1/auth/register", json={"email": email, "password": password})


async def api_login(client, email: str, password: str) -> int:  # type: ignore[no-untyped-def]
    response = await client.post(
        "/api/v1/auth/bearer/login",
        data={"username": email, "password": password},
        headers={"X-CSRFToken": client.cookies.get("csrftoken", "")},
    )
    return response.status_code


ATTACKER = "quiet harbour lamp posts"


async def verify(client, mailbox: Mailbox, email: str) -> None:  # type: ignore[no-untyped-def]
    code = mailbox.code_for(email)  # the newest code: the only one that works
    verified = await client.post("/api/v1/auth/verify", json={"email": email, "code": code})
    assert verified.status_code == 200


@pytest.mark.parametrize("owner_first", [True, False], ids=["owner-first", "attacker-first"])
async def test_row38_a_second_sign_up_never_sets_a_pending_accounts_password(
    client, app, mailbox, owner_first
):
    first, second = (PASSWORD, ATTACKER) if owner_first else (ATTACKER, PASSWORD)
    answers = []
    for password in (first, second):
        answers.append(await register_api(client, "nia@example.com", password))
        await settle(app)
        await app.state.limiter.reset()  # a minute later: past the gap between two codes
    answers.append(await register_api(client, "new@example.com", ATTACKER))
    assert {a.status_code for a in answers} == {202}
    assert answers[0].json() == answers[1].json() == answers[2].json()
    mail = mailbox.last_to("nia@example.com").get_body(("plain",))
    assert mail is not None and "changed nothing" in mail.get_content()

    await verify(client, mailbox, "nia@example.com")
    assert await api_login(client, "nia@example.com", second) == 400, "the second never wins"
    assert await api_login(client, "nia@example.com", first) == 200, "the first is kept"
    # Whoever proves the mailbox and does not know the first password takes it back by reset,
    # which ends the other sessions.
    token = await reset_link(client, app, mailbox, "nia@example.com")
    assert (await reset(client, token)).status_code == 200
    assert await api_login(client, "nia@example.com", NEW_PASSWORD) == 200
    assert await api_login(client, "nia@example.com", first) == 400


async def login_answer(client, email: str, password: str) -> str:  # type: ignore[no-untyped-def]
    response = await client.post(
        "/api/v1/auth/bearer/login",
        data={"username": email, "password": password},
        headers={"X-CSRFToken": client.cookies.get("csrftoken", "")},
    )
    return str(response.json()["detail"])


async def test_row38_on_the_pages_the_first_password_is_kept_another_one_changes_nothing(
    client, app, mailbox
):
    for password in (PASSWORD, PASSWORD):  # pressed twice, or back and again
        await post_form(client, "/register", {"email": "nia@example.com", "password": password})
        await settle(app)
    right = await login_answer(client, "nia@example.com", PASSWORD)
    assert right == "LOGIN_USER_NOT_VERIFIED", "the password is still the one chosen"

    again = await post_form(client, "/register", {"email": "nia@example.com", "password": ATTACKER})
    assert again.status_code == 303
    await settle(app)
    code = mailbox.code_for("nia@example.com")
    await post_form(client, "/verify", {"email": "nia@example.com", "code": code})
    assert await login_answer(client, "nia@example.com", ATTACKER) == "LOGIN_BAD_CREDENTIALS"
    assert await api_login(client, "nia@example.com", PASSWORD) == 200


NFC = "zo\u00eb@example.com"  # ë as one character
NFD = "zoe\u0308@example.com"  # e and a combining diaeresis: looks the same


async def accounts_count(session) -> int:  # type: ignore[no-untyped-def]
    session.expire_all()
    return int((await session.execute(select(func.count()).select_from(User))).scalar_one())


async def test_row38_one_account_per_address_in_nfc_and_nfd_through_every_door(
    client, app, session, mailbox
):
    assert (await register_api(client, NFC, PASSWORD)).status_code == 202
    await settle(app)
    page = await post_form(client, "/register", {"email": NFD.upper(), "password": PASSWORD})
    assert page.status_code == 303
    await settle(app)
    assert await accounts_count(session) == 1
    stored = (await session.execute(select(User.email))).scalar_one()
    assert stored == NFC

    code = mailbox.code_for(NFC)
    verified = await post_form(client, "/verify", {"email": NFD, "code": code})
    assert verified.status_code == 303 and verified.headers["location"].startswith("/login")
    assert await api_login(client, NFD, PASSWORD) == 200
    await sign_in(client, NFD.replace("example", "EXAMPLE"))

    mailbox.messages.clear()
    await post_form(client, "/forgot-password", {"email": NFD})
    await settle(app)
    assert mailbox.link_for(NFC, "/reset-password")


async def test_row38_look_alike_spellings_of_the_domain_are_one_account(client, app, session):
    await register_api(client, "ada@ex\u00e4mple.com", PASSWORD)
    await settle(app)
    for spelling in ("ada@xn--exmple-cua.com", "ADA@EXA\u0308MPLE.COM"):
        await post_form(client, "/register", {"email": spelling, "password": PASSWORD})
        await settle(app)
    assert await accounts_count(session) == 1


async def test_row38_an_email_change_to_a_look_alike_of_a_taken_address_is_refused(
    client, app, session, alice, mailbox
):
    await register_api(client, NFC, PASSWORD)
    await settle(app)
    await sign_in(client, "alice@example.com")
    mailbox.messages.clear()
    asked = await post_form(client, "/settings/email", {"email": NFD, "current_password": PASSWORD})
    assert asked.status_code == 303
    await settle(app)
    assert not mailbox.to(NFD) and not mailbox.to(NFC), "no code for a taken address"
    await app.state.limiter.reset()  # a minute later: past the gap between two codes
    code_request = await client.post(
        "/api/v1/auth/request-code",
        json={"email": NFD},
        headers={"X-CSRFToken": client.cookies["csrftoken"]},
    )
    assert code_request.status_code == 202
    await settle(app)
    assert mailbox.to(NFC), "the pending account got its new code under its NFC spelling"


async def test_row38_create_user_on_the_command_line_normalises_too(db_url, app, session):
    await make_user(session, NFC)
    env = {**os.environ, "DATABASE_URL": db_url}
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "app", "create-user", NFD, "--password-stdin"],
        input=PASSWORD + "\n",
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode != 0 and "already has an account" in done.stderr + done.stdout
    assert await accounts_count(session) == 1


async def test_row38_addresses_stored_before_are_normalised_by_the_migration(request, db_url):
    url = request.getfixturevalue("empty_database")  # tests/test_migrations.py's
    config = alembic_config(url)
    await asyncio.to_thread(command.upgrade, config, "0004")
    engine = create_engine(url)
    old = {"zoe\u0308@example.com": "NFD", "ada@xn--exmple-cua.com": "punycode"}
    old |= {"ZO\u00cb@EXAMPLE.COM": "taken", "bo@example.com": "plain"}
    with engine.begin() as conn:
        for email in old:
            conn.execute(
                text(
                    'INSERT INTO "user" (id, email, hashed_password, is_active, is_superuser, '
                    "is_verified) VALUES (:id, :email, 'x', true, false, true)"
                ),
                {"id": str(uuid.uuid4()), "email": email},
            )
    await asyncio.to_thread(command.upgrade, config, "head")
    with engine.connect() as conn:
        emails = set(conn.execute(text('SELECT email FROM "user"')).scalars())
    engine.dispose()
    # the first of two spellings of one mailbox gets the normal form; the other stays
    assert emails == {NFC, "ada@ex\u00e4mple.com", "ZO\u00cb@EXAMPLE.COM", "bo@example.com"}
