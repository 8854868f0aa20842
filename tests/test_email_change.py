"""Changing the account's email: a code to the new address, a notice to the old one."""

import httpx
import time_machine
from sqlalchemy import func, inspect, select

from app.models import AuditEvent, EmailCode, User
from tests.conftest import Mailbox, settle
from tests.factories import PASSWORD, assert_inert, bearer_token, post_form, sign_in
from tests.test_audit_and_sessions import another_device, bearer, kinds
from tests.test_entries_pages import page_hx_allowed

HTMX = {"HX-Request": "true"}
ME = "/api/v1/users/me"
CONFIRM = "/api/v1/users/me/email/confirm"
NEW = "alice@new.example"
SENT = "If the new address can be used, a 6-digit code is on its way to it."


async def ask(client: httpx.AsyncClient, token: str, email: str = NEW, password: str = PASSWORD):  # type: ignore[no-untyped-def]
    return await client.patch(
        ME, json={"email": email, "current_password": password}, headers=bearer(token)
    )


async def email_of(session, user) -> str:  # type: ignore[no-untyped-def]
    user_id = inspect(user).identity[0]  # without loading the (possibly expired) object
    session.expire_all()
    return str((await session.execute(select(User.email).where(User.id == user_id))).scalar_one())


async def count(session, model) -> int:  # type: ignore[no-untyped-def]
    return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


async def test_the_address_changes_once_the_code_from_the_new_address_is_confirmed(
    client, app, session, alice, mailbox: Mailbox
):
    token = await bearer_token(client, "alice@example.com")
    async with another_device(app) as phone:
        phone_token = await bearer_token(phone, "alice@example.com")

        asked = await ask(client, token)
        await settle(app)

        assert asked.status_code == 202 and asked.json()["message"].startswith(SENT)
        assert await email_of(session, alice) == "alice@example.com", "nothing changes yet"
        notice = mailbox.last_to("alice@example.com").get_body(("plain",))
        assert notice is not None and NEW in notice.get_content()
        code = mailbox.code_for(NEW)

        confirmed = await client.post(CONFIRM, json={"code": code}, headers=bearer(token))

        assert confirmed.status_code == 200 and confirmed.json()["email"] == NEW
        assert await email_of(session, alice) == NEW
        assert (await phone.get(ME, headers=bearer(phone_token))).status_code == 401
    assert (await client.get(ME, headers=bearer(token))).status_code == 200
    await settle(app)
    assert (await kinds(session, alice))[-2:] == ["email_change_requested", "email_changed"]
    assert await count(session, EmailCode) == 0, "the code is single use"
    assert (
        await client.post(CONFIRM, json={"code": code}, headers=bearer(token))
    ).status_code == 400
    old = await client.post(
        "/api/v1/auth/bearer/login", data={"username": "alice@example.com", "password": PASSWORD}
    )
    assert old.status_code == 400
    await bearer_token(client, NEW)


async def test_it_refuses_a_wrong_password_and_writes_nothing(
    client, app, session, alice, mailbox: Mailbox
):
    token = await bearer_token(client, "alice@example.com")

    response = await ask(client, token, password="not my password")
    await settle(app)

    assert response.status_code == 422
    assert response.json()["detail"] == {
        "code": "USER_UPDATE_INVALID",
        "field": "current_password",
        "reason": "Your current password is not correct.",
    }
    assert await count(session, EmailCode) == 0
    assert "email_change_requested" not in await kinds(session, alice)
    assert mailbox.messages == []


async def test_a_taken_address_gets_the_same_answer_and_no_mail_at_all_to_its_owner(
    client, app, session, alice, bob, mailbox: Mailbox
):
    token = await bearer_token(client, "alice@example.com")
    free = await ask(client, token, email="free@example.com")
    taken = await ask(client, token, email="BOB@example.com")
    await settle(app)

    assert (free.status_code, free.json()) == (taken.status_code, taken.json())
    assert mailbox.to("bob@example.com") == [], "the owner of the address learns nothing"
    assert len(mailbox.to("alice@example.com")) == 2, "a notice for each request, alike"
    for _ in range(3):  # no code reached anyone, so nothing can be guessed into place
        refused = await client.post(CONFIRM, json={"code": "000000"}, headers=bearer(token))
        assert refused.status_code == 400
    assert await email_of(session, alice) == "alice@example.com"


async def test_it_rejects_a_wrong_code_and_the_code_dies_after_five_tries(
    client, app, session, alice, mailbox: Mailbox
):
    token = await bearer_token(client, "alice@example.com")
    await ask(client, token)
    await settle(app)
    code = mailbox.code_for(NEW)
    for _ in range(5):
        response = await client.post(CONFIRM, json={"code": wrong(code)}, headers=bearer(token))
        assert response.status_code == 400
        assert response.json() == {"detail": "EMAIL_CODE_INVALID"}

    late = await client.post(CONFIRM, json={"code": code}, headers=bearer(token))

    assert late.status_code == 400
    assert await email_of(session, alice) == "alice@example.com"


async def test_it_rejects_an_expired_code(client, app, session, alice, mailbox: Mailbox):
    token = await bearer_token(client, "alice@example.com")
    with time_machine.travel("2026-11-23 10:00:00+00:00", tick=False):
        await ask(client, token)
        await settle(app)
    code = mailbox.code_for(NEW)
    with time_machine.travel("2026-11-23 10:10:01+00:00", tick=False):
        response = await client.post(CONFIRM, json={"code": code}, headers=bearer(token))
    assert response.status_code == 400
    assert await email_of(session, alice) == "alice@example.com"


async def test_a_code_that_arrived_at_9_59_still_works(client, app, session, alice, mailbox):
    token = await bearer_token(client, "alice@example.com")
    with time_machine.travel("2026-11-23 10:00:00+00:00", tick=False):
        await ask(client, token)
        await settle(app)
    with time_machine.travel("2026-11-23 10:09:59+00:00", tick=False):
        response = await client.post(
            CONFIRM, json={"code": mailbox.code_for(NEW)}, headers=bearer(token)
        )
    assert response.status_code == 200


async def test_bob_cannot_use_alices_code_and_the_verify_endpoint_ignores_it(
    client, app, session, alice, bob, mailbox: Mailbox
):
    await ask(client, await bearer_token(client, "alice@example.com"))
    await settle(app)
    code = mailbox.code_for(NEW)
    async with another_device(app) as bobs:
        bob_token = await bearer_token(bobs, "bob@example.com")
        response = await bobs.post(CONFIRM, json={"code": code}, headers=bearer(bob_token))
    verify = await client.post(
        "/api/v1/auth/verify", json={"email": "alice@example.com", "code": code}
    )

    assert response.status_code == 400 and verify.status_code == 400
    assert await email_of(session, bob) == "bob@example.com"
    assert await email_of(session, alice) == "alice@example.com"


async def test_anon_gets_401_from_the_api_and_the_login_page_from_the_forms(client, app):
    assert (await client.patch(ME, json={"email": NEW, "current_password": "x"})).status_code == 401
    assert (await client.post(CONFIRM, json={"code": "123456"})).status_code == 401
    for path in ("/settings/email", "/settings/email/confirm"):
        page = await post_form(client, path, {"email": NEW, "code": "123456"})
        assert page.status_code == 303 and page.headers["location"].startswith("/login")


async def test_it_refuses_bad_requests_with_a_clear_message(client, app, session, alice):
    token = await bearer_token(client, "alice@example.com")
    same = await ask(client, token, email="Alice@Example.com")
    neither = await client.patch(ME, json={"current_password": PASSWORD}, headers=bearer(token))
    invalid = await ask(client, token, email="not an address")

    assert same.status_code == 422 and same.json()["detail"]["reason"] == (
        "That is already your address."
    )
    assert neither.status_code == 422 and "Send a new `password` or a new `email`." in neither.text
    assert invalid.status_code == 422
    assert await count(session, EmailCode) == 0


async def test_an_account_asks_for_at_most_five_new_addresses_a_day(
    client, app, alice, mailbox: Mailbox
):
    token = await bearer_token(client, "alice@example.com")
    for n in range(5):
        assert (await ask(client, token, email=f"n{n}@example.com")).status_code == 202

    sixth = await ask(client, token, email="n6@example.com")
    await settle(app)

    assert sixth.status_code == 422
    assert sixth.json()["detail"]["reason"] == "Too many address changes today. Try again tomorrow."
    assert mailbox.to("n6@example.com") == []


async def test_a_password_change_cancels_a_change_under_way(client, app, session, alice, mailbox):
    token = await bearer_token(client, "alice@example.com")
    await ask(client, token)
    await settle(app)
    code = mailbox.code_for(NEW)
    changed = await client.patch(
        ME,
        json={"current_password": PASSWORD, "password": "bright copper kettle"},
        headers=bearer(token),
    )
    assert changed.status_code == 200
    token = await bearer_token(client, "alice@example.com", "bright copper kettle")

    response = await client.post(CONFIRM, json={"code": code}, headers=bearer(token))

    assert response.status_code == 400


async def test_the_settings_page_changes_the_email_without_javascript(
    client, app, session, alice, mailbox: Mailbox
):
    await sign_in(client, "alice@example.com")
    asked = await post_form(client, "/settings/email", {"email": NEW, "current_password": PASSWORD})
    assert asked.status_code == 303 and asked.headers["location"] == "/settings#email-h"
    await settle(app)
    page = await client.get("/settings")
    assert f"If {NEW} can be used, a 6-digit code is on its way to it." in page.text
    assert "Code from the email" in page.text

    done = await post_form(client, "/settings/email/confirm", {"code": mailbox.code_for(NEW)})

    assert done.status_code == 303
    page = await client.get("/settings")
    assert f"Your address is now {NEW}." in page.text
    assert "Changed the email address (alice@new.example) from 203.0.113.7" in page.text


async def test_the_settings_forms_answer_htmx_with_their_fragment_and_errors(
    client, app, session, alice, mailbox: Mailbox
):
    await sign_in(client, "alice@example.com")
    refused = await post_form(
        client, "/settings/email", {"email": NEW, "current_password": "nope"}, headers=HTMX
    )
    assert refused.status_code == 422 and "<html" not in refused.text
    assert "Your current password is not correct." in refused.text
    assert f'value="{NEW}"' in refused.text, "the typed address stays in the form"

    asked = await post_form(
        client, "/settings/email", {"email": NEW, "current_password": PASSWORD}, headers=HTMX
    )
    assert asked.status_code == 200 and asked.headers["hx-redirect"] == "/settings#email-h"
    await settle(app)
    bad = await post_form(
        client, "/settings/email/confirm", {"code": wrong(mailbox.code_for(NEW))}, headers=HTMX
    )
    assert bad.status_code == 422 and "<html" not in bad.text
    assert "That code is not right or has expired." in bad.text
    short = await post_form(client, "/settings/email/confirm", {"code": "12"}, headers=HTMX)
    assert "Enter the 6 digits from the email." in short.text
    assert await email_of(session, alice) == "alice@example.com"


async def test_a_taken_address_is_refused_at_confirmation_if_it_was_taken_meanwhile(
    client, app, session, alice, mailbox: Mailbox
):
    await sign_in(client, "alice@example.com")
    await post_form(client, "/settings/email", {"email": NEW, "current_password": PASSWORD})
    await settle(app)
    from tests.factories import make_user

    await make_user(session, NEW)

    response = await post_form(
        client, "/settings/email/confirm", {"code": mailbox.code_for(NEW)}, headers=HTMX
    )

    assert response.status_code == 422
    assert "Another account now uses that address." in response.text
    assert await email_of(session, alice) == "alice@example.com"


async def test_script_in_the_email_field_is_refused_or_inert_in_pages_and_mail(
    client, app, session, alice, mailbox: Mailbox
):
    await sign_in(client, "alice@example.com")
    script = await post_form(
        client,
        "/settings/email",
        {"email": "<script>alert(1)</script>@example.com", "current_password": PASSWORD},
        headers=HTMX,
    )
    assert script.status_code == 422 and "Enter an email address like" in script.text
    assert "<script>alert(1)" not in script.text

    hostile = "x'onmouseover=alert`1`'hx-get=`/x`@example.com"
    asked = await post_form(
        client, "/settings/email", {"email": hostile, "current_password": PASSWORD}
    )
    assert asked.status_code == 303
    await settle(app)
    page = await client.get("/settings")
    assert "x&#39;onmouseover=alert`1`&#39;hx-get=`/x`@example.com" in page.text
    assert_inert(page.text, page_hx_allowed(page.text))
    for message in mailbox.messages:
        html = message.get_body(("html",))
        assert html is not None
        assert_inert(html.get_content(), set())
    assert await count(session, AuditEvent) >= 2


async def test_an_account_gets_at_most_ten_wrong_codes_a_day(
    client, app, session, alice, mailbox: Mailbox
):
    token = await bearer_token(client, "alice@example.com")
    for _ in range(2):
        await ask(client, token)
        await settle(app)
        for _ in range(5):
            await client.post(
                CONFIRM, json={"code": wrong(mailbox.code_for(NEW))}, headers=bearer(token)
            )
    await ask(client, token)
    await settle(app)

    response = await client.post(
        CONFIRM, json={"code": mailbox.code_for(NEW)}, headers=bearer(token)
    )

    assert response.status_code == 429 and response.json() == {"detail": "TOO_MANY_ATTEMPTS"}
    assert await email_of(session, alice) == "alice@example.com"
