"""The account pages, with and without JavaScript (HTMX fragments vs. 303 redirects)."""

import httpx
from sqlalchemy import func, select

from app.models import AccessToken, User
from tests.conftest import Mailbox, settle
from tests.factories import PASSWORD, make_user, post_form, sign_in

HTMX = {"HX-Request": "true"}
NEW_PASSWORD = "bright copper kettle whistles"


async def test_a_visitor_signs_up_verifies_signs_in_and_out(
    client: httpx.AsyncClient, app, mailbox: Mailbox
):
    registered = await post_form(
        client, "/register", {"email": "nia@example.com", "password": PASSWORD}
    )
    assert registered.status_code == 303
    assert registered.headers["location"] == "/verify?email=nia%40example.com"
    await settle(app)
    page = await client.get(registered.headers["location"])
    assert "We sent a 6-digit code to nia@example.com" in page.text

    verified = await post_form(
        client, "/verify", {"email": "nia@example.com", "code": mailbox.code_for("nia@example.com")}
    )
    assert verified.status_code == 303
    assert verified.headers["location"] == "/login?email=nia%40example.com"

    await sign_in(client, "nia@example.com")
    home = await client.get("/")
    assert "Here is what comes next" in home.text

    out = await post_form(client, "/logout", {})
    assert out.status_code == 303
    assert out.headers["clear-site-data"] == '"cache", "cookies", "storage"'
    assert "Here is what comes next" not in (await client.get("/")).text


async def test_htmx_gets_a_redirect_header_instead_of_a_303(client, app):
    response = await post_form(
        client, "/register", {"email": "oz@example.com", "password": PASSWORD}, headers=HTMX
    )
    assert response.status_code == 200
    assert response.headers["hx-redirect"] == "/verify?email=oz%40example.com"


async def test_register_errors_show_inline_in_the_fragment(client, app, session):
    response = await post_form(
        client, "/register", {"email": "not-an-email", "password": "short"}, headers=HTMX
    )
    assert response.status_code == 422
    assert "<html" not in response.text
    assert 'aria-invalid="true"' in response.text
    assert "Enter an email address like name@example.com." in response.text
    assert "Use at least 8 characters." in response.text
    assert "HX-Request" in response.headers["vary"]
    await settle(app)
    assert (await session.execute(select(func.count()).select_from(User))).scalar_one() == 0


async def test_register_errors_show_in_the_page_without_javascript(client):
    response = await post_form(
        client, "/register", {"email": "x@example.com", "password": "password"}
    )
    assert response.status_code == 422
    assert "<html" in response.text
    assert 'value="x@example.com"' in response.text
    assert 'id="f-password-error"' in response.text


async def test_a_wrong_code_is_explained_inline(client, app, mailbox: Mailbox):
    await post_form(client, "/register", {"email": "pia@example.com", "password": PASSWORD})
    await settle(app)
    code = mailbox.code_for("pia@example.com")
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    response = await post_form(
        client, "/verify", {"email": "pia@example.com", "code": wrong}, headers=HTMX
    )
    assert response.status_code == 422
    assert "That code is not right or has expired" in response.text


async def test_resend_mails_a_new_code(client, app, mailbox: Mailbox, session):
    await make_user(session, "quin@example.com", is_verified=False)
    response = await post_form(client, "/verify/resend", {"email": "quin@example.com"})
    await settle(app)
    assert response.status_code == 303
    assert mailbox.code_for("quin@example.com")


async def test_an_unverified_user_is_told_why_and_sent_to_verify(
    client, app, session, mailbox: Mailbox
):
    await make_user(session, "ray@example.com", is_verified=False)
    response = await post_form(client, "/login", {"email": "ray@example.com", "password": PASSWORD})
    assert response.status_code == 303
    assert response.headers["location"] == "/verify?email=ray%40example.com"
    page = await client.get(response.headers["location"])
    assert "Please verify your email address first" in page.text
    await settle(app)
    assert mailbox.code_for("ray@example.com")
    assert "sd_session" not in client.cookies


async def test_a_wrong_password_shows_one_message_for_everyone(client, alice):
    wrong = await post_form(
        client, "/login", {"email": "alice@example.com", "password": "nope"}, headers=HTMX
    )
    unknown = await post_form(
        client, "/login", {"email": "no@example.com", "password": "nope"}, headers=HTMX
    )
    assert wrong.status_code == unknown.status_code == 422
    assert wrong.text.replace("alice@example.com", "E") == unknown.text.replace(
        "no@example.com", "E"
    )
    assert "The email or password is not correct." in wrong.text


async def test_login_goes_to_the_next_page_but_never_off_site(client, alice):
    response = await post_form(
        client, "/login", {"email": "alice@example.com", "password": PASSWORD, "next": "/settings"}
    )
    assert response.headers["location"] == "/settings"
    client.cookies.clear()
    response = await post_form(
        client,
        "/login",
        {"email": "alice@example.com", "password": PASSWORD, "next": "//evil.example"},
    )
    assert response.headers["location"] == "/"


async def test_pages_need_a_session(client):
    response = await client.get("/settings")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/settings"


async def test_signing_out_without_a_session_just_goes_to_sign_in(client):
    response = await post_form(client, "/logout", {})
    assert response.status_code == 303
    assert response.headers["location"] == "/login?signed_out=1"


async def test_a_signed_in_visitor_skips_the_sign_in_page(client, alice):
    await sign_in(client, "alice@example.com")
    assert (await client.get("/login")).status_code == 303
    assert (await client.get("/register")).status_code == 303


async def test_forgot_and_reset_password_through_the_pages(
    client, app, alice, mailbox: Mailbox, session
):
    other_device = httpx.AsyncClient(transport=client._transport, base_url="http://testserver")
    await sign_in(other_device, "alice@example.com")

    asked = await post_form(client, "/forgot-password", {"email": "alice@example.com"})
    assert asked.status_code == 303
    await settle(app)
    link = mailbox.link_for("alice@example.com", "/reset-password")
    form = await client.get(link)
    assert form.status_code == 200
    token = httpx.URL(link).params["token"]
    assert f'value="{token}"' in form.text

    done = await post_form(client, "/reset-password", {"token": token, "password": NEW_PASSWORD})
    assert done.status_code == 303
    assert (await other_device.get("/settings")).status_code == 303, "other sessions end"
    reused = await post_form(client, "/reset-password", {"token": token, "password": NEW_PASSWORD})
    assert reused.status_code == 422
    assert "invalid, used or expired" in reused.text
    await sign_in(client, "alice@example.com", NEW_PASSWORD)


async def test_forgot_password_answers_the_same_for_unknown_emails(client, app, alice):
    real = await post_form(client, "/forgot-password", {"email": "alice@example.com"})
    unknown = await post_form(client, "/forgot-password", {"email": "nobody@example.com"})
    assert real.status_code == unknown.status_code == 303
    assert real.headers["location"] == unknown.headers["location"]


async def test_changing_the_password_keeps_this_session_and_ends_the_others(client, alice, session):
    other_device = httpx.AsyncClient(transport=client._transport, base_url="http://testserver")
    await sign_in(other_device, "alice@example.com")
    await sign_in(client, "alice@example.com")
    old_cookie = client.cookies["sd_session"]

    response = await post_form(
        client,
        "/settings/password",
        {"current_password": PASSWORD, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
    )

    assert response.status_code == 303
    assert client.cookies["sd_session"] != old_cookie
    assert (await client.get("/settings")).status_code == 200
    assert (await other_device.get("/settings")).status_code == 303
    replay = httpx.AsyncClient(transport=client._transport, base_url="http://testserver")
    replay.cookies.set("sd_session", old_cookie)
    assert (await replay.get("/api/v1/users/me")).status_code == 401
    assert (await session.execute(select(func.count()).select_from(AccessToken))).scalar_one() == 1


async def test_change_password_errors_show_inline(client, alice):
    await sign_in(client, "alice@example.com")
    wrong = await post_form(
        client,
        "/settings/password",
        {"current_password": "nope", "password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
        headers=HTMX,
    )
    mismatch = await post_form(
        client,
        "/settings/password",
        {"current_password": PASSWORD, "password": NEW_PASSWORD, "confirm": "other"},
        headers=HTMX,
    )
    assert wrong.status_code == mismatch.status_code == 422
    assert "Your current password is not correct." in wrong.text
    assert "The two new passwords are not the same." in mismatch.text


async def test_the_mail_status_poll_stops_after_a_while(client):
    response = await client.get("/verify/status?email=a@example.com&n=20", headers=HTMX)
    assert "hx-trigger" not in response.text
    response = await client.get("/verify/status?email=a@example.com&n=3", headers=HTMX)
    assert "n=4" in response.text


async def test_an_unknown_page_is_a_friendly_404(client):
    response = await client.get("/no-such-page", headers={"Accept": "text/html"})
    assert response.status_code == 404
    assert "We could not find that page" in response.text


async def test_healthz_checks_the_database(client):
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok" and response.json()["database"] == "ok"


async def test_the_welcome_page_invites_visitors_to_sign_up(client):
    response = await client.get("/")
    assert 'href="/register"' in response.text
    assert response.headers["cache-control"] == "no-store"
