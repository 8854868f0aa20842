"""SECURITY.md rows 1 and 2: password and code guessing are cut off, reset still works."""

import httpx

from app.ratelimit import AuthLimiter
from tests.conftest import Mailbox, settle
from tests.factories import PASSWORD, bearer_token

LOGIN = "/api/v1/auth/bearer/login"


async def fail_login(client: httpx.AsyncClient, email: str, times: int) -> list[httpx.Response]:
    return [
        await client.post(LOGIN, data={"username": email, "password": "wrong guess"})
        for _ in range(times)
    ]


def other_ip(app, host: str) -> httpx.AsyncClient:  # type: ignore[no-untyped-def]
    transport = httpx.ASGITransport(app=app, client=(host, 50000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


async def test_row1_an_account_locks_after_20_failed_logins_with_the_same_answer_as_unknown(
    app, alice
):
    answers = []
    for i, email in enumerate(["alice@example.com"] * 20 + ["ghost@example.com"] * 20):
        async with other_ip(app, f"198.51.100.{i}") as client:  # spread over addresses
            answers += await fail_login(client, email, 1)
    assert {a.status_code for a in answers} == {400}
    async with other_ip(app, "198.51.100.200") as client:
        real = await client.post(
            LOGIN, data={"username": "alice@example.com", "password": PASSWORD}
        )
        unknown = await client.post(
            LOGIN, data={"username": "ghost@example.com", "password": PASSWORD}
        )
    assert real.status_code == unknown.status_code == 429
    assert real.json() == unknown.json() == {"detail": "TOO_MANY_ATTEMPTS"}


async def test_row1_an_address_gets_at_most_20_failed_attempts_an_hour(client, alice, bob):
    answers = await fail_login(client, "carol@example.com", 20)
    assert {a.status_code for a in answers} == {400}
    blocked = await client.post(LOGIN, data={"username": "bob@example.com", "password": PASSWORD})
    assert blocked.status_code == 429


async def test_row1_a_locked_account_can_still_reset_its_password(app, alice, mailbox: Mailbox):
    for i in range(20):
        async with other_ip(app, f"198.51.100.{i}") as client:
            await fail_login(client, "alice@example.com", 1)
    async with other_ip(app, "192.0.2.1") as client:
        asked = await client.post(
            "/api/v1/auth/forgot-password", json={"email": "alice@example.com"}
        )
        await settle(app)
        token = httpx.URL(mailbox.link_for("alice@example.com", "/reset-password")).params["token"]
        reset = await client.post(
            "/api/v1/auth/reset-password",
            json={"token": token, "password": "a brand new sunny phrase"},
        )
        assert asked.status_code == 202
        assert reset.status_code == 200
        assert await bearer_token(client, "alice@example.com", "a brand new sunny phrase")


async def test_row1_limits_are_shared_through_redis_when_configured(redis_url):
    first, second = AuthLimiter(redis_url), AuthLimiter(redis_url)
    await first.reset()
    for _ in range(20):
        assert await first.login_attempt("shared@example.com", "192.0.2.9")
    assert not await second.login_attempt("shared@example.com", "192.0.2.10")
    await first.reset()


async def test_row2_a_code_dies_after_five_tries_and_ten_per_day_is_the_cap(
    client, app, mailbox: Mailbox
):
    await client.post(
        "/api/v1/auth/register", json={"email": "cody@example.com", "password": PASSWORD}
    )
    await settle(app)
    statuses = []
    for round_ in range(3):
        if round_:
            await client.post("/api/v1/auth/request-code", json={"email": "cody@example.com"})
            await settle(app)
        code = mailbox.code_for("cody@example.com")
        wrong = f"{(int(code) + 1) % 1_000_000:06d}"
        for _ in range(5):
            r = await client.post(
                "/api/v1/auth/verify", json={"email": "cody@example.com", "code": wrong}
            )
            statuses.append(r.status_code)
    assert statuses[:10] == [400] * 10
    assert statuses[10:] == [429] * 5
