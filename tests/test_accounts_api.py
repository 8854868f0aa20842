"""The accounts JSON API: register, verify, sign in and out, reset and change password."""

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select

from app.models import User
from tests.conftest import Mailbox, settle
from tests.factories import PASSWORD, bearer_token, make_user

NEW_PASSWORD = "bright copper kettle whistles"


async def register(
    client: httpx.AsyncClient, app: FastAPI, email: str, **extra: object
) -> httpx.Response:
    response = await client.post(
        "/api/v1/auth/register", json={"email": email, "password": PASSWORD, **extra}
    )
    await settle(app)
    return response


async def count(session, model, **where) -> int:  # type: ignore[no-untyped-def]
    stmt = select(func.count()).select_from(model).filter_by(**where)
    return int((await session.execute(stmt)).scalar_one())


async def test_register_mails_a_code_that_verifies_the_account(
    client, app, mailbox: Mailbox, session
):
    response = await register(client, app, "Carol@Example.com")
    assert response.status_code == 202
    code = mailbox.code_for("carol@example.com")
    message = mailbox.last_to("carol@example.com")
    assert message.get_body(("html",)) is not None, "the mail has an HTML part"

    verified = await client.post(
        "/api/v1/auth/verify", json={"email": "carol@example.com", "code": code}
    )

    assert verified.status_code == 200
    user = (await session.execute(select(User).filter_by(email="carol@example.com"))).scalar_one()
    assert user.is_verified
    token = await bearer_token(client, "carol@example.com")
    me = await client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
    assert me.json()["email"] == "carol@example.com"


async def test_register_answers_the_same_for_a_taken_email(client, app, alice, mailbox: Mailbox):
    taken = await register(client, app, "alice@example.com")
    free = await register(client, app, "dave@example.com")

    assert taken.status_code == free.status_code == 202
    assert taken.json() == free.json()
    assert (
        "already has one" in mailbox.last_to("alice@example.com").get_body(("plain",)).get_content()
    )


async def test_register_rejects_a_weak_password_and_writes_nothing(
    client, app, session, mailbox: Mailbox
):
    for weak in ["short", "password123", "x" * 129]:
        response = await client.post(
            "/api/v1/auth/register", json={"email": "eve@example.com", "password": weak}
        )
        assert response.status_code == 422
        assert response.json()["detail"]["code"] == "REGISTER_INVALID_PASSWORD"
    await settle(app)
    assert await count(session, User) == 0
    assert mailbox.messages == []


async def test_register_ignores_privileged_fields(client, app, session):
    await register(
        client,
        app,
        "mallory@example.com",
        is_superuser=True,
        is_verified=True,
        is_active=False,
        id="x",
    )
    user = (await session.execute(select(User))).scalar_one()
    assert (user.is_superuser, user.is_verified, user.is_active) == (False, False, True)


async def test_register_again_while_unverified_keeps_the_first_password(
    client, app, mailbox: Mailbox
):
    """A second sign-up never replaces a pending account's password (SECURITY.md row 38)."""
    await register(client, app, "vic@example.com")
    await client.post(
        "/api/v1/auth/register",
        json={"email": "vic@example.com", "password": "attacker picked this one"},
    )
    await settle(app)
    code = mailbox.code_for("vic@example.com")
    assert (
        await client.post("/api/v1/auth/verify", json={"email": "vic@example.com", "code": code})
    ).status_code == 200

    for password, status in (("attacker picked this one", 400), (PASSWORD, 200)):
        attempt = await client.post(
            "/api/v1/auth/bearer/login", data={"username": "vic@example.com", "password": password}
        )
        assert attempt.status_code == status


async def test_json_sent_as_text_plain_is_refused_and_writes_nothing(client, app, session):
    response = await client.post(
        "/api/v1/auth/register",
        content=b'{"email": "tp@example.com", "password": "correct horse battery staple"}',
        headers={"Content-Type": "text/plain"},
    )
    await settle(app)
    assert response.status_code in (415, 422)
    assert await count(session, User) == 0


async def test_request_code_answers_the_same_for_everyone(client, app, alice, mailbox: Mailbox):
    answers = [
        await client.post("/api/v1/auth/request-code", json={"email": email})
        for email in ("alice@example.com", "nobody@example.com")
    ]
    await settle(app)
    assert {a.status_code for a in answers} == {202}
    assert answers[0].json() == answers[1].json()
    assert mailbox.messages == [], "verified and unknown accounts get no code"


async def test_a_code_dies_after_five_wrong_tries(client, app, mailbox: Mailbox):
    await register(client, app, "ida@example.com")
    code = mailbox.code_for("ida@example.com")
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    for _ in range(5):
        response = await client.post(
            "/api/v1/auth/verify", json={"email": "ida@example.com", "code": wrong}
        )
        assert response.status_code == 400
        assert response.json() == {"detail": "VERIFY_CODE_INVALID"}
    late = await client.post("/api/v1/auth/verify", json={"email": "ida@example.com", "code": code})
    assert late.status_code == 400


async def test_an_account_gets_at_most_ten_wrong_codes_a_day(client, app, mailbox: Mailbox):
    await register(client, app, "jo@example.com")
    for attempt in range(10):
        if attempt == 5:
            await client.post("/api/v1/auth/request-code", json={"email": "jo@example.com"})
            await settle(app)
        code = mailbox.code_for("jo@example.com")
        wrong = f"{(int(code) + 1) % 1_000_000:06d}"
        await client.post("/api/v1/auth/verify", json={"email": "jo@example.com", "code": wrong})
    await client.post("/api/v1/auth/request-code", json={"email": "jo@example.com"})
    await settle(app)
    right = mailbox.code_for("jo@example.com")

    response = await client.post(
        "/api/v1/auth/verify", json={"email": "jo@example.com", "code": right}
    )

    assert response.status_code == 429
    assert response.json() == {"detail": "TOO_MANY_ATTEMPTS"}


async def test_login_answers_the_same_for_a_wrong_password_and_an_unknown_email(client, alice):
    wrong = await client.post(
        "/api/v1/auth/bearer/login", data={"username": "alice@example.com", "password": "nope nope"}
    )
    unknown = await client.post(
        "/api/v1/auth/bearer/login", data={"username": "zed@example.com", "password": "nope nope"}
    )
    assert wrong.status_code == unknown.status_code == 400
    assert wrong.json() == unknown.json() == {"detail": "LOGIN_BAD_CREDENTIALS"}


async def test_an_unverified_account_cannot_sign_in(client, session):
    await make_user(session, "new@example.com", is_verified=False)
    response = await client.post(
        "/api/v1/auth/bearer/login", data={"username": "new@example.com", "password": PASSWORD}
    )
    assert response.status_code == 400
    assert response.json() == {"detail": "LOGIN_USER_NOT_VERIFIED"}


async def test_changing_the_password_needs_the_current_one(client, alice):
    token = await bearer_token(client, "alice@example.com")
    response = await client.patch(
        "/api/v1/users/me",
        json={"current_password": "wrong wrong wrong", "password": NEW_PASSWORD},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 422
    assert response.json()["detail"]["field"] == "current_password"
    assert await bearer_token(client, "alice@example.com", PASSWORD)


async def forgot(client, app, email):  # type: ignore[no-untyped-def]
    response = await client.post("/api/v1/auth/forgot-password", json={"email": email})
    await settle(app)
    return response


async def test_forgot_password_answers_the_same_for_everyone(client, app, alice, mailbox: Mailbox):
    real = await forgot(client, app, "alice@example.com")
    unknown = await forgot(client, app, "nobody@example.com")
    assert real.status_code == unknown.status_code == 202
    assert real.json() == unknown.json()
    assert [m["To"] for m in mailbox.messages] == ["alice@example.com"]


async def reset_token(mailbox: Mailbox, email: str) -> str:
    link = mailbox.link_for(email, "/reset-password")
    return httpx.URL(link).params["token"]


async def test_reset_refuses_a_weak_password(client, app, alice, mailbox: Mailbox):
    await forgot(client, app, "alice@example.com")
    token = await reset_token(mailbox, "alice@example.com")
    response = await client.post(
        "/api/v1/auth/reset-password", json={"token": token, "password": "password"}
    )
    assert response.status_code == 422
    assert response.json()["detail"]["code"] == "RESET_PASSWORD_INVALID_PASSWORD"
