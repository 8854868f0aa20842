"""SECURITY.md rows 30, 31 and 32: limits hold under concurrency, across workers and IPv6
networks, and account mail cannot be used to flood an address or kill a pending code."""

import asyncio
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
import time_machine
from fastapi import FastAPI
from sqlalchemy import select

from app import gunicorn_conf
from app.config import workers_problem
from app.models import EmailCode, User
from app.ratelimit import AuthLimiter, ip_key
from tests.conftest import Mailbox, free_port, make_settings, settle
from tests.factories import PASSWORD, bearer_token, make_user, post_form
from tests.test_audit_and_sessions import bearer

ROOT = Path(__file__).resolve().parents[2]
LOGIN = "/api/v1/auth/bearer/login"
VERIFY = "/api/v1/auth/verify"
STORES = ["memory", "redis"]


def client_at(app: FastAPI, host: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(host, 50000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


@pytest.fixture(params=STORES)
async def store(request: pytest.FixtureRequest, app: FastAPI) -> AsyncIterator[str]:
    """The app's limits in memory, or shared through Redis (REDIS_URL_TEST) for this test."""
    if request.param == "memory":
        yield "memory"
        return
    url = os.environ.get("REDIS_URL_TEST", "redis://127.0.0.1:6379/15")  # as redis_url does
    shared = AuthLimiter(url)
    if not await shared.storage.check():
        if os.environ.get("REDIS_URL_TEST"):
            pytest.fail(f"REDIS_URL_TEST is set but {url} does not answer")
        pytest.skip("no Redis server to share rate limits through")
    await shared.reset()
    own, app.state.limiter = app.state.limiter, shared
    try:
        yield "redis"
    finally:
        await app.state.background.drain()
        await shared.reset()
        app.state.limiter = own


async def from_many(app: FastAPI, n: int, post: Any) -> list[httpx.Response]:
    """n requests at once, each from its own address (so only the account's limit binds)."""
    clients = [client_at(app, f"198.18.{i // 250}.{i % 250 + 1}") for i in range(n)]
    try:
        return list(await asyncio.gather(*(post(c) for c in clients)))
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))


def statuses(answers: list[httpx.Response]) -> Counter[int]:
    return Counter(a.status_code for a in answers)


# --- Row 30: counted and checked in one step ---------------------------------------------------


async def test_row30_100_concurrent_wrong_passwords_for_one_account_judge_at_most_20(
    app, alice, store
):
    answers = await from_many(
        app, 100, lambda c: c.post(LOGIN, data={"username": alice.email, "password": "wrong"})
    )
    assert statuses(answers) == {400: 20, 429: 80}
    async with client_at(app, "192.0.2.77") as late:
        right = await late.post(LOGIN, data={"username": alice.email, "password": PASSWORD})
    assert right.status_code == 429, "the account is locked, the right password too"


async def test_row30_100_concurrent_wrong_passwords_from_one_address_judge_at_most_20(app, store):
    async with client_at(app, "192.0.2.50") as one:
        answers = await asyncio.gather(
            *(
                one.post(LOGIN, data={"username": f"guess{i}@example.com", "password": "wrong"})
                for i in range(100)
            )
        )
    assert statuses(list(answers)) == {400: 20, 429: 80}


async def test_row30_a_right_password_gives_its_try_back(app, client, alice, store):
    for _ in range(19):
        await client.post(LOGIN, data={"username": alice.email, "password": "wrong"})
    for _ in range(5):
        assert await bearer_token(client, alice.email), "never slowed by its own sign-ins"
    last = await client.post(LOGIN, data={"username": alice.email, "password": "wrong"})
    over = await client.post(LOGIN, data={"username": alice.email, "password": "wrong"})
    assert (last.status_code, over.status_code) == (400, 429)


async def unverified_with_code(app, client, mailbox: Mailbox, email: str) -> str:  # type: ignore[no-untyped-def]
    registered = await client.post(
        "/api/v1/auth/register", json={"email": email, "password": PASSWORD}
    )
    await settle(app)
    assert registered.status_code == 202
    return mailbox.code_for(email)


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


async def attempts(session, email: str) -> int:  # type: ignore[no-untyped-def]
    session.expire_all()
    stmt = select(EmailCode.attempts).join(User).where(User.email == email)
    return int((await session.execute(stmt)).scalar_one())


async def test_row30_40_concurrent_wrong_codes_count_at_most_5_then_the_code_is_dead(
    app, client, session, mailbox: Mailbox, store
):
    code = await unverified_with_code(app, client, mailbox, "cody@example.com")
    body = {"email": "cody@example.com", "code": wrong(code)}
    answers = await from_many(app, 40, lambda c: c.post(VERIFY, json=body))
    assert statuses(answers) == {400: 10, 429: 30}, "10 wrong codes a day per account"
    assert await attempts(session, "cody@example.com") == 5
    await app.state.limiter.reset()  # past the account's daily cap: only the code's own count
    late = await client.post(VERIFY, json={"email": "cody@example.com", "code": code})
    assert late.status_code == 400, "the right code comes too late"


class CodesUnlimited(AuthLimiter):
    """Every code try passes the limiter, so the code's own counter is all that stops them."""

    async def code_attempt(self, email: str, ip: str) -> bool:
        return True


async def test_row30_the_codes_own_count_holds_when_40_tries_reach_it_at_once(
    app, client, session, mailbox: Mailbox
):
    code = await unverified_with_code(app, client, mailbox, "dora@example.com")
    own, app.state.limiter = app.state.limiter, CodesUnlimited()
    try:
        body = {"email": "dora@example.com", "code": wrong(code)}
        answers = await asyncio.gather(*(client.post(VERIFY, json=body) for _ in range(40)))
        late = await client.post(VERIFY, json={"email": "dora@example.com", "code": code})
    finally:
        app.state.limiter = own
    assert statuses(list(answers)) == {400: 40}
    assert await attempts(session, "dora@example.com") == 5
    assert late.status_code == 400


# --- Row 31: one count across workers and IPv6 networks ----------------------------------------

PRODUCTION = {"ENVIRONMENT": "production", "SECRET_KEY": "s" * 48}
WORKER_COUNTS = {
    "-w 2": (["-w", "2"], {}),
    "WEB_CONCURRENCY=4 (the image)": ([], {"WEB_CONCURRENCY": "4"}),
    "GUNICORN_CMD_ARGS": ([], {"GUNICORN_CMD_ARGS": "--workers 3"}),
}


@pytest.mark.parametrize("workers", list(WORKER_COUNTS))
def test_row31_production_with_several_workers_and_no_redis_refuses_to_start_in_one_line(
    workers, tmp_path: Path
):
    args, extra = WORKER_COUNTS[workers]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEST_", "REDIS_URL"))}
    for name in ("WEB_CONCURRENCY", "GUNICORN_CMD_ARGS", "COOKIE_SECURE"):
        env.pop(name, None)
    env.update(PRODUCTION, PYTHONPATH=str(ROOT), **extra)
    command = [sys.executable, "-m", "gunicorn", "-c", "python:app.gunicorn_conf"]
    server = subprocess.Popen(
        [*command, "app.main:create_app()", *args, "--bind", f"127.0.0.1:{free_port()}"],
        cwd=tmp_path,  # no .env file to lean on
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # a server that did start is stopped with all its workers
    )
    try:
        _, stderr = server.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.communicate()
        pytest.fail("the server started")
    result = SimpleNamespace(returncode=server.returncode, stderr=stderr)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 3, result.stderr
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("SuccessDiary cannot start: REDIS_URL must be set to run"), lines


def production_settings(**overrides: Any) -> Any:
    return make_settings(
        "sqlite+aiosqlite:///unused.sqlite3",
        1025,
        environment="production",
        secret_key=PRODUCTION["SECRET_KEY"],
        cookie_secure=True,
        **overrides,
    )


def test_row31_one_worker_development_or_redis_may_start():
    production = production_settings()
    shared = production_settings(redis_url="redis://127.0.0.1:6379/0")
    development = make_settings("sqlite+aiosqlite:///unused.sqlite3", 1025)
    assert workers_problem(production, 1) is None
    assert workers_problem(shared, 4) is None
    assert workers_problem(development, 4) is None
    assert workers_problem(production, 2) is not None


def test_row31_a_running_master_refuses_more_workers_without_redis(monkeypatch):
    monkeypatch.setattr(gunicorn_conf, "settings", production_settings())
    errors: list[str] = []

    class Master(SimpleNamespace):
        def __setattr__(self, name: str, value: Any) -> None:
            old = self.__dict__.get(name)
            super().__setattr__(name, value)
            if name == "num_workers":  # gunicorn's property calls the hook the same way
                gunicorn_conf.nworkers_changed(self, value, old)

    master = Master(log=SimpleNamespace(error=lambda msg, *a: errors.append(msg % a)))
    master.num_workers = 1
    master.num_workers = 2  # kill -TTIN
    assert master.num_workers == 1
    assert errors and "REDIS_URL must be set" in errors[0]


def test_row31_addresses_are_counted_ipv4_alone_ipv6_by_64_and_mapped_as_ipv4():
    assert ip_key("192.0.2.1") != ip_key("192.0.2.2")
    assert ip_key("2001:db8:1:2::1") == ip_key("2001:db8:1:2:ffff:ffff:ffff:ffff")
    assert ip_key("2001:db8:1:2::1") != ip_key("2001:db8:1:3::1")
    assert ip_key("::ffff:192.0.2.9") == ip_key("192.0.2.9")
    assert ip_key("testclient") == "testclient"


async def test_row31_one_ipv6_64_gets_20_failed_attempts_an_hour_whatever_its_addresses(app, store):
    answers = []
    for i in range(20):  # each from a fresh address of the same /64, for a fresh account
        async with client_at(app, f"2001:db8:1:2:{i:x}::{i + 1:x}") as c:
            answers.append(
                await c.post(LOGIN, data={"username": f"v6-{i}@example.com", "password": "x"})
            )
    assert statuses(answers) == {400: 20}
    async with (
        client_at(app, "2001:db8:1:2:abcd::1") as same,
        client_at(app, "2001:db8:1:3::1") as next_network,
    ):
        blocked = await same.post(LOGIN, data={"username": "new@example.com", "password": "x"})
        other = await next_network.post(
            LOGIN, data={"username": "new@example.com", "password": "x"}
        )
    assert (blocked.status_code, other.status_code) == (429, 400)


async def test_row31_an_ipv4_mapped_address_shares_its_ipv4_count(app):
    for i in range(20):
        host = "192.0.2.33" if i % 2 else "::ffff:192.0.2.33"
        async with client_at(app, host) as c:
            await c.post(LOGIN, data={"username": f"m{i}@example.com", "password": "x"})
    async with client_at(app, "192.0.2.33") as c:
        blocked = await c.post(LOGIN, data={"username": "m@example.com", "password": "x"})
    assert blocked.status_code == 429


# --- Row 32: account mail cannot flood an address or kill a pending code ------------------------


def clock() -> Any:
    return time_machine.travel(datetime.now(UTC), tick=True)


async def test_row32_an_address_gets_at_most_5_account_mails_an_hour_with_the_same_answers(
    app, client, session, mailbox: Mailbox, store
):
    await make_user(session, "una@example.com", is_verified=False)
    asks = {
        "forgot": ("/api/v1/auth/forgot-password", {}),
        "code": ("/api/v1/auth/request-code", {}),
    }
    with clock() as travel:
        answers: dict[str, list[httpx.Response]] = {"una": [], "ghost": []}
        for i in range(24):
            path, _ = asks["forgot" if i % 2 else "code"]
            for who in answers:
                answers[who].append(await client.post(path, json={"email": f"{who}@example.com"}))
            await settle(app)
            travel.shift(61)  # past the gap between codes: only the hourly cap holds them back
        assert len(mailbox.to("una@example.com")) == 5
        travel.shift(3600)
        await client.post("/api/v1/auth/forgot-password", json={"email": "una@example.com"})
        await settle(app)
    assert len(mailbox.to("una@example.com")) == 6, "the next hour brings mail again"
    for real, unknown in zip(answers["una"], answers["ghost"], strict=True):
        assert (real.status_code, real.json()) == (unknown.status_code, unknown.json())
    assert {a.status_code for a in answers["una"]} == {202}


async def test_row32_reset_links_and_sign_up_notices_share_the_cap(app, client, alice, mailbox):
    for _ in range(6):
        await client.post("/api/v1/auth/forgot-password", json={"email": alice.email})
        await client.post(
            "/api/v1/auth/register", json={"email": alice.email, "password": PASSWORD}
        )
    await settle(app)
    assert len(mailbox.to(alice.email)) == 5


async def test_row32_a_code_asked_for_inside_the_gap_neither_mails_nor_replaces_the_pending_one(
    app, client, session, mailbox: Mailbox, store
):
    email = "vera@example.com"
    async with client_at(app, "192.0.2.80") as browser:  # page forms carry a CSRF cookie
        asks = (
            lambda: client.post("/api/v1/auth/request-code", json={"email": email}),
            lambda: client.post(
                "/api/v1/auth/register", json={"email": email, "password": PASSWORD}
            ),
            lambda: post_form(browser, "/verify/resend", {"email": email}),
            lambda: post_form(browser, "/login", {"email": email, "password": PASSWORD}),
        )
        with clock() as travel:
            code = await unverified_with_code(app, client, mailbox, email)
            for ask in asks:
                assert (await ask()).status_code in (202, 303)
                await settle(app)
                travel.shift(14)
            assert len(mailbox.to(email)) == 1
            travel.shift(61)
            await client.post("/api/v1/auth/request-code", json={"email": email})
            await settle(app)
            assert len(mailbox.to(email)) == 2, "after the gap a new code goes out"
            old = await client.post(VERIFY, json={"email": email, "code": code})
            new = mailbox.code_for(email)
            if new != code:  # one chance in a million they are the same
                assert old.status_code == 400, "the new code replaced the old one"
            verified = await client.post(VERIFY, json={"email": email, "code": new})
    assert verified.status_code == 200


async def test_row32_asking_for_codes_all_hour_cannot_keep_a_person_from_verifying(
    app, client, mailbox: Mailbox
):
    with clock() as travel:
        await unverified_with_code(app, client, mailbox, "wes@example.com")
        async with client_at(app, "198.51.100.99") as attacker:
            for _ in range(9):  # one a minute, past the gap every time
                travel.shift(61)
                await attacker.post("/api/v1/auth/request-code", json={"email": "wes@example.com"})
                await settle(app)
        assert len(mailbox.to("wes@example.com")) == 5
        latest = mailbox.code_for("wes@example.com")
        verified = await client.post(VERIFY, json={"email": "wes@example.com", "code": latest})
    assert verified.status_code == 200, "the last code mailed was never replaced"


async def test_row32_email_change_codes_to_one_address_are_capped_too(
    app, client, session, mailbox: Mailbox
):
    victim = "target@example.com"
    answers = []
    for i in range(7):
        email = f"changer{i}@example.com"
        await make_user(session, email)
        token = await bearer_token(client, email)
        answers.append(
            await client.patch(
                "/api/v1/users/me",
                json={"email": victim, "current_password": PASSWORD},
                headers=bearer(token),
            )
        )
    await settle(app)
    assert {a.status_code for a in answers} == {202}
    assert len({a.json()["message"] for a in answers}) == 1
    assert len(mailbox.to(victim)) == 5
    assert all(mailbox.to(f"changer{i}@example.com") for i in range(7)), "owners get notices"
