"""SECURITY.md rows 3, 4, 5, 12 and 13: codes live 10 minutes and once, reset links once and
for an hour, sessions end for good at logout or password change, forged tokens get nothing."""

import base64
import json
from datetime import UTC, datetime, timedelta

import jwt
import pytest
import time_machine
from sqlalchemy import select

from app.models import AccessToken, EmailCode, User
from tests.conftest import Mailbox, settle
from tests.factories import PASSWORD, bearer_token, csrf_token
from tests.test_accounts_api import NEW_PASSWORD, count, forgot, register, reset_token


async def test_row3_a_resend_kills_the_old_code(client, app, mailbox: Mailbox):
    await register(client, app, "fay@example.com")
    old = mailbox.code_for("fay@example.com")
    await client.post("/api/v1/auth/request-code", json={"email": "fay@example.com"})
    await settle(app)
    new = mailbox.code_for("fay@example.com")

    if old != new:
        refused = await client.post(
            "/api/v1/auth/verify", json={"email": "fay@example.com", "code": old}
        )
        assert refused.status_code == 400
    accepted = await client.post(
        "/api/v1/auth/verify", json={"email": "fay@example.com", "code": new}
    )
    assert accepted.status_code == 200


async def test_row3_a_code_is_single_use(client, app, mailbox: Mailbox):
    await register(client, app, "gus@example.com")
    code = mailbox.code_for("gus@example.com")
    body = {"email": "gus@example.com", "code": code}
    assert (await client.post("/api/v1/auth/verify", json=body)).status_code == 200
    assert (await client.post("/api/v1/auth/verify", json=body)).status_code == 400


async def test_row3_alices_code_never_verifies_bob(client, app, mailbox: Mailbox, session):
    await register(client, app, "alice2@example.com")
    await register(client, app, "bob2@example.com")
    code = mailbox.code_for("alice2@example.com")
    while mailbox.code_for("bob2@example.com") == code:  # one chance in a million: draw again
        await client.post("/api/v1/auth/request-code", json={"email": "bob2@example.com"})
        await settle(app)
    response = await client.post(
        "/api/v1/auth/verify", json={"email": "bob2@example.com", "code": code}
    )
    assert response.status_code == 400
    assert await count(session, User, is_verified=True) == 0


@pytest.mark.parametrize(("minutes", "status"), [(9 * 60 + 59, 200), (10 * 60 + 1, 400)])
async def test_row3_a_code_is_accepted_at_9_59_and_refused_at_10_01(
    client, app, mailbox: Mailbox, minutes, status
):
    with time_machine.travel("2026-05-01 12:00:00+00:00", tick=False) as clock:
        await register(client, app, "hal@example.com")
        code = mailbox.code_for("hal@example.com")
        clock.shift(minutes)
        response = await client.post(
            "/api/v1/auth/verify", json={"email": "hal@example.com", "code": code}
        )
    assert response.status_code == status


async def test_row4_codes_are_stored_only_as_hashes(client, app, mailbox: Mailbox, session):
    await register(client, app, "kim@example.com")
    code = mailbox.code_for("kim@example.com")
    row = (await session.execute(select(EmailCode))).scalar_one()
    assert code not in row.code_hash
    assert len(row.code_hash) == 64


async def test_row5_a_reset_link_works_once_and_revokes_other_sessions(
    client, app, alice, mailbox: Mailbox
):
    session_token = await bearer_token(client, "alice@example.com")
    await forgot(client, app, "alice@example.com")
    token = await reset_token(mailbox, "alice@example.com")

    done = await client.post(
        "/api/v1/auth/reset-password", json={"token": token, "password": NEW_PASSWORD}
    )
    again = await client.post(
        "/api/v1/auth/reset-password", json={"token": token, "password": "another fine phrase here"}
    )

    assert done.status_code == 200
    assert again.status_code == 400
    assert again.json() == {"detail": "RESET_PASSWORD_BAD_TOKEN"}
    assert (
        await client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {session_token}"})
    ).status_code == 401
    assert await bearer_token(client, "alice@example.com", NEW_PASSWORD)


async def test_row5_a_reset_link_expires_after_an_hour(client, app, alice, mailbox: Mailbox):
    with time_machine.travel("2026-05-01 12:00:00+00:00", tick=False) as clock:
        await forgot(client, app, "alice@example.com")
        token = await reset_token(mailbox, "alice@example.com")
        clock.shift(3601)
        response = await client.post(
            "/api/v1/auth/reset-password", json={"token": token, "password": NEW_PASSWORD}
        )
    assert response.status_code == 400


async def test_row12_a_bearer_token_replayed_after_logout_gets_401(client, alice):
    token = await bearer_token(client, "alice@example.com")
    auth = {"Authorization": f"Bearer {token}"}
    assert (await client.post("/api/v1/auth/bearer/logout", headers=auth)).status_code == 204
    assert (await client.get("/api/v1/users/me", headers=auth)).status_code == 401


async def test_row12_a_cookie_replayed_after_logout_gets_401(client, alice, session):
    response = await client.post(
        "/api/v1/auth/cookie/login", data={"username": "alice@example.com", "password": PASSWORD}
    )
    assert response.status_code == 204
    cookie = client.cookies["sd_session"]
    assert (await client.get("/api/v1/users/me")).status_code == 200
    token = await csrf_token(client)

    assert (
        await client.post("/api/v1/auth/cookie/logout", headers={"x-csrftoken": token})
    ).status_code == 204

    client.cookies.set("sd_session", cookie)
    assert (await client.get("/api/v1/users/me")).status_code == 401
    assert await count(session, AccessToken) == 0


async def test_row12_changing_the_password_revokes_every_session(client, alice):
    tokens = [await bearer_token(client, "alice@example.com") for _ in range(2)]
    response = await client.patch(
        "/api/v1/users/me",
        json={
            "current_password": PASSWORD,
            "password": NEW_PASSWORD,
            "email": "x@example.com",
            "is_superuser": True,
        },
        headers={"Authorization": f"Bearer {tokens[0]}"},
    )
    assert response.status_code == 200
    assert response.json()["email"] == "alice@example.com"
    for token in tokens:
        assert (
            await client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
        ).status_code == 401
    assert await bearer_token(client, "alice@example.com", NEW_PASSWORD)


@pytest.mark.parametrize(
    "token",
    [
        "not-a-token",
        "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiIxIn0.",  # alg=none
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl",  # bad signature
        "x" * 5000,
    ],
)
async def test_row13_a_forged_bearer_token_gets_401(client, alice, token):
    response = await client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401


async def test_row13_an_expired_bearer_token_gets_401(client, app, alice):
    with time_machine.travel("2026-05-01 12:00:00+00:00", tick=False) as clock:
        token = await bearer_token(client, "alice@example.com")
        clock.shift(app.state.settings.session_lifetime_seconds + 1)
        response = await client.get(
            "/api/v1/users/me", headers={"Authorization": f"Bearer {token}"}
        )
    assert response.status_code == 401


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def forged_reset_tokens(real: str, secret: str) -> dict[str, str]:
    """The real reset token's claims, re-signed the ways an attacker would try."""
    claims = jwt.decode(real, options={"verify_signature": False})
    expired = {**claims, "exp": int((datetime.now(UTC) - timedelta(minutes=1)).timestamp())}
    return {
        "alg=none": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}.",
        "bad signature": jwt.encode(claims, "not-the-server-secret-0123456789", "HS256"),
        "expired": jwt.encode(expired, secret, "HS256"),
    }


async def test_row13_forged_and_expired_reset_tokens_are_refused(
    client, app, alice, session, mailbox: Mailbox
):
    await forgot(client, app, "alice@example.com")
    real = await reset_token(mailbox, "alice@example.com")
    forged = forged_reset_tokens(real, app.state.settings.secret_key)
    for name, token in forged.items():
        response = await client.post(
            "/api/v1/auth/reset-password", json={"token": token, "password": NEW_PASSWORD}
        )
        assert response.status_code == 400, name
        assert response.json() == {"detail": "RESET_PASSWORD_BAD_TOKEN"}, name
    assert await bearer_token(client, "alice@example.com", PASSWORD), "the password is unchanged"
    honest = await client.post(
        "/api/v1/auth/reset-password", json={"token": real, "password": NEW_PASSWORD}
    )
    assert honest.status_code == 200, "the forgeries differ from the real token only as named"


@pytest.mark.parametrize("tamper", ["flip the last character", "unknown token", "empty"])
async def test_row13_a_tampered_or_unknown_session_cookie_gets_401(client, alice, tamper):
    response = await client.post(
        "/api/v1/auth/cookie/login", data={"username": "alice@example.com", "password": PASSWORD}
    )
    assert response.status_code == 204
    real = client.cookies["sd_session"]
    bad = {
        "flip the last character": real[:-1] + ("A" if real[-1] != "A" else "B"),
        "unknown token": "x" * len(real),
        "empty": "",
    }[tamper]
    client.cookies.set("sd_session", bad)
    assert (await client.get("/api/v1/users/me")).status_code == 401
    client.cookies.set("sd_session", real)
    assert (await client.get("/api/v1/users/me")).status_code == 200, "the real cookie still works"


async def test_row13_a_tampered_bearer_token_gets_401(client, alice):
    token = await bearer_token(client, "alice@example.com")
    tampered = token[:-1] + ("A" if token[-1] != "A" else "B")
    assert (
        await client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {tampered}"})
    ).status_code == 401
    assert (
        await client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
    ).status_code == 200
