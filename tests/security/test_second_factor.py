"""SECURITY.md rows 41 and 42: the second factor.

Row 41: TOTP codes single use (no replay in their window), 5 wrong per sign-in and 10 a day per
account, then 429 even for the right code; the password step alone issues no session; a reset by
email still asks for the second factor.
Row 42: ten recovery codes stored hashed, each works once; passkeys registered and used through
WebAuthn with origin and RP ID checked; every change on the audit trail and mailed.
"""

import asyncio
import time

import httpx
import time_machine
from sqlalchemy import select

from app.models import AuditEvent, Passkey, PendingSignIn, RecoveryCode
from app.ratelimit import AuthLimiter
from tests.conftest import Mailbox, settle
from tests.factories import PASSWORD, post_form, sign_in
from tests.test_accounts_api import NEW_PASSWORD
from tests.twofactor_steps import (
    START,
    SoftAuthenticator,
    add_passkey,
    api_login,
    at,
    code_step,
    passkey_sign_in,
    password_step,
    post_json,
    session_cookie_set,
    turn_on_totp,
)


def wrong(code: str) -> str:
    return "000000" if code != "000000" else "111111"


async def test_row41_a_code_works_once_in_its_window_on_the_page_and_the_api(client, alice):
    with time_machine.travel(START, tick=False) as clock:
        secret, _, _ = await turn_on_totp(client, alice.email)
        clock.shift(30)
        code = at(secret, time.time())
        client.cookies.clear()
        await password_step(client, alice.email)
        assert (await code_step(client, code)).status_code == 303
        # Seen over a shoulder and typed at once elsewhere: refused, by the API and the page.
        other = httpx.AsyncClient(transport=client._transport, base_url="http://testserver")
        async with other:
            assert (await api_login(other, alice.email, otp=code)).status_code == 400
            await password_step(other, alice.email)
            replay = await code_step(other, code)
            assert replay.status_code == 422 and not session_cookie_set(replay)
            clock.shift(15)  # still the same step, still inside the window
            assert (await code_step(other, code)).status_code == 422
            clock.shift(15)
            fresh = at(secret, time.time())
            assert (await code_step(other, fresh)).status_code == 303


async def test_row41_racing_requests_with_one_code_let_only_one_in(client, alice, app):
    with time_machine.travel(START, tick=False) as clock:
        secret, _, _ = await turn_on_totp(client, alice.email)
        clock.shift(30)
        code = at(secret, time.time())
        answers = await asyncio.gather(
            *(api_login(client, alice.email, otp=code) for _ in range(6))
        )
    assert sorted(a.status_code for a in answers) == [200, 400, 400, 400, 400, 400]


async def test_row41_five_wrong_codes_end_the_sign_in_then_429_even_for_the_right_code(
    client, alice, session
):
    with time_machine.travel(START, tick=False) as clock:
        secret, _, _ = await turn_on_totp(client, alice.email)
        clock.shift(30)
        right = at(secret, time.time())
        client.cookies.clear()
        await password_step(client, alice.email)
        statuses = [(await code_step(client, wrong(right))).status_code for _ in range(5)]
        assert statuses == [422] * 5
        refused = await code_step(client, right)
        assert refused.status_code == 429 and not session_cookie_set(refused)
        assert "Too many wrong codes" in refused.text
        pending = (await session.execute(select(PendingSignIn))).scalar_one()
        assert pending.attempts == 5
        # A new password step is a new attempt with its own 5 (the day's 10 are not used up).
        await password_step(client, alice.email)
        assert (await code_step(client, right)).status_code == 303


async def test_row41_concurrent_wrong_codes_never_get_past_five_per_sign_in(client, alice):
    with time_machine.travel(START, tick=False) as clock:
        secret, _, _ = await turn_on_totp(client, alice.email)
        clock.shift(30)
        bad = wrong(at(secret, time.time()))
        client.cookies.clear()
        await password_step(client, alice.email)
        answers = await asyncio.gather(*(code_step(client, bad) for _ in range(9)))
    codes = sorted(a.status_code for a in answers)
    assert codes == [422] * 5 + [429] * 4, codes


async def test_row41_ten_wrong_codes_a_day_lock_the_account_then_429_even_for_the_right_code(
    client, alice
):
    with time_machine.travel(START, tick=False) as clock:
        secret, _, _ = await turn_on_totp(client, alice.email)
        clock.shift(30)
        right = at(secret, time.time())
        client.cookies.clear()
        for _ in range(2):  # two sign-in attempts of 5 wrong codes each
            await password_step(client, alice.email)
            for _ in range(5):
                assert (await code_step(client, wrong(right))).status_code == 422
        await password_step(client, alice.email)
        locked = await code_step(client, right)
        assert locked.status_code == 429 and not session_cookie_set(locked)
        client.cookies.clear()
        api = await api_login(client, alice.email, otp=right)
        assert api.status_code == 429 and api.json() == {"detail": "TOO_MANY_ATTEMPTS"}
        clock.shift(24 * 3600 + 60)  # a day later the account may try again
        fresh = at(secret, time.time())
        assert (await api_login(client, alice.email, otp=fresh)).status_code == 200


async def test_row41_the_api_counts_wrong_codes_against_the_same_ten_a_day(client, alice):
    with time_machine.travel(START, tick=False) as clock:
        secret, _, _ = await turn_on_totp(client, alice.email)
        clock.shift(30)
        right = at(secret, time.time())
        for _ in range(10):
            assert (await api_login(client, alice.email, otp=wrong(right))).status_code == 400
        assert (await api_login(client, alice.email, otp=right)).status_code == 429


async def test_row41_the_password_step_alone_issues_no_session(client, alice, session):
    with time_machine.travel(START, tick=False):
        await turn_on_totp(client, alice.email)
        client.cookies.clear()
        before = len((await session.execute(select(PendingSignIn))).scalars().all())
        step = await password_step(client, alice.email, next="/settings")
        assert step.status_code == 303 and step.headers["location"] == "/login/second-step"
        assert not session_cookie_set(step)
        assert "sd_pending=" in step.headers.get("set-cookie", "")
        assert (await client.get("/settings")).status_code == 303
        assert (await client.get("/api/v1/users/me")).status_code == 401
        cookie = await client.post(
            "/api/v1/auth/cookie/login",
            data={"username": alice.email, "password": PASSWORD},
            headers={"X-CSRFToken": client.cookies["csrftoken"]},
        )
        assert cookie.status_code == 401 and cookie.json() == {"detail": "OTP_REQUIRED"}
        assert "set-cookie" not in cookie.headers or not session_cookie_set(cookie)
        after = len((await session.execute(select(PendingSignIn))).scalars().all())
        assert after == before + 1
        # The pending sign-in dies after 10 minutes: the code page then sends back to /login.
    with time_machine.travel("2026-12-02 09:11:00+00:00", tick=False):
        late = await client.get("/login/second-step")
        assert late.status_code == 303 and late.headers["location"] == "/login"


async def test_row41_a_reset_by_email_still_asks_for_the_second_factor(
    client, alice, app, mailbox: Mailbox
):
    with time_machine.travel(START, tick=False) as clock:
        secret, _, _ = await turn_on_totp(client, alice.email)
        client.cookies.clear()
        await client.post("/api/v1/auth/forgot-password", json={"email": alice.email})
        await settle(app)
        token = mailbox.link_for(alice.email, "/reset-password").partition("token=")[2]
        reset = await post_form(
            client, "/reset-password", {"token": token, "password": NEW_PASSWORD}
        )
        assert reset.status_code == 303 and not session_cookie_set(reset)
        step = await password_step(client, alice.email, password=NEW_PASSWORD)
        assert step.headers["location"] == "/login/second-step" and not session_cookie_set(step)
        async with httpx.AsyncClient(
            transport=client._transport, base_url="http://testserver"
        ) as api:
            no_otp = await api_login(api, alice.email, password=NEW_PASSWORD)
        assert no_otp.status_code == 401 and no_otp.json() == {"detail": "OTP_REQUIRED"}
        clock.shift(30)
        done = await code_step(client, at(secret, time.time()))
        assert done.status_code == 303 and session_cookie_set(done)


async def test_row42_ten_recovery_codes_stored_hashed_each_works_once(client, alice, session, app):
    with time_machine.travel(START, tick=False):
        _, codes, _ = await turn_on_totp(client, alice.email)
        rows = (await session.execute(select(RecoveryCode))).scalars().all()
        assert len(rows) == 10 and all(r.used_at is None for r in rows)
        assert not {c.replace("-", "") for c in codes} & {r.code_hash for r in rows}
        assert (await api_login(client, alice.email, otp=codes[0])).status_code == 200
        assert (await api_login(client, alice.email, otp=codes[0])).status_code == 400
        client.cookies.clear()
        await password_step(client, alice.email)
        assert (await code_step(client, codes[0])).status_code == 422  # spent by the API
        page = await code_step(client, codes[1])
        assert page.status_code == 303
        assert "8 recovery codes remain" in (await client.get(page.headers["location"])).text
        await settle(app)
    session.expire_all()
    used = (
        (await session.execute(select(RecoveryCode).where(RecoveryCode.used_at.is_not(None))))
        .scalars()
        .all()
    )
    assert len(used) == 2
    kinds = (await session.execute(select(AuditEvent.kind, AuditEvent.detail))).all()
    assert ("recovery_code_used", "9 left") in kinds and ("recovery_code_used", "8 left") in kinds


async def test_row42_racing_requests_with_one_recovery_code_let_only_one_in(client, alice):
    with time_machine.travel(START, tick=False):
        _, codes, _ = await turn_on_totp(client, alice.email)
        answers = await asyncio.gather(
            *(api_login(client, alice.email, otp=codes[5]) for _ in range(5))
        )
    assert sorted(a.status_code for a in answers) == [200, 400, 400, 400, 400]


async def test_row42_a_passkey_registers_and_signs_in_with_origin_and_rp_id_checked(
    client, alice, session, app, mailbox: Mailbox
):
    await sign_in(client, alice.email)
    authenticator = SoftAuthenticator()
    # A credential made for another site (origin or RP ID) is refused, and so is a challenge
    # used twice.
    assert (
        await add_passkey(client, authenticator, origin="https://evil.example")
    ).status_code == 400
    assert (await add_passkey(client, authenticator, rp_id="evil.example")).status_code == 400
    options = (await post_json(client, "/settings/passkeys/options", {})).json()
    credential = authenticator.create(options["publicKey"], "http://testserver")
    body = {"handle": options["handle"], "name": "Work laptop", "credential": credential}
    added = await post_json(client, "/settings/passkeys", body)
    assert added.status_code == 200 and added.json() == {"redirect": "/settings#passkeys-h"}
    assert (await post_json(client, "/settings/passkeys", body)).status_code == 400
    key = (await session.execute(select(Passkey))).scalar_one()
    assert key.name == "Work laptop" and key.transports == "internal" and key.last_used_at is None
    assert (options["publicKey"]["authenticatorSelection"]["residentKey"]) == "required"
    page = await client.get("/settings")
    assert "Work laptop" in page.text and "never used yet" in page.text

    client.cookies.clear()
    assert (
        await passkey_sign_in(client, authenticator, origin="https://evil.example")
    ).status_code == 400
    assert (await passkey_sign_in(client, authenticator, rp_id="evil.example")).status_code == 400
    signed = await passkey_sign_in(client, authenticator, next="/entries")
    assert signed.status_code == 200 and signed.json() == {"redirect": "/entries"}
    assert session_cookie_set(signed)
    assert (await client.get("/entries")).status_code == 200
    # The same assertion again (its challenge is spent, its counter old): refused.
    options = (await post_json(client, "/login/passkey/options", {})).json()
    stale = authenticator.get(options["publicKey"], "http://testserver", "testserver")
    authenticator.sign_count -= 1
    replay = authenticator.get(options["publicKey"], "http://testserver", "testserver")
    ok = await post_json(
        client, "/login/passkey", {"handle": options["handle"], "credential": stale}
    )
    assert ok.status_code == 200
    again = await post_json(
        client, "/login/passkey", {"handle": options["handle"], "credential": replay}
    )
    assert again.status_code == 400
    session.expire_all()
    key = (await session.execute(select(Passkey))).scalar_one()
    assert key.last_used_at is not None and key.sign_count == authenticator.sign_count


async def test_row42_every_change_is_on_the_audit_trail_and_mailed(
    client, alice, session, app, mailbox: Mailbox
):
    with time_machine.travel(START, tick=False) as clock:
        secret, codes, _headers = await turn_on_totp(client, alice.email)
        await api_login(client, alice.email, otp=codes[0])
        clock.shift(30)
        client.cookies.clear()
        await password_step(client, alice.email)
        await code_step(client, at(secret, time.time()))
        authenticator = SoftAuthenticator()
        assert (await add_passkey(client, authenticator, name="Phone")).status_code == 200
        key = (await session.execute(select(Passkey))).scalar_one()
        client.cookies.clear()
        await passkey_sign_in(client, authenticator)
        removed = await post_form(client, f"/settings/passkeys/{key.id}/delete", {})
        assert removed.status_code == 303
        clock.shift(30)
        off = await client.post(
            "/api/v1/users/me/totp/disable",
            json={"current_password": PASSWORD, "code": at(secret, time.time())},
            headers={"X-CSRFToken": client.cookies["csrftoken"]},
        )
        assert off.status_code == 200, off.text
        await settle(app)
    events = (await session.execute(select(AuditEvent.kind, AuditEvent.detail))).all()
    for wanted in [
        ("totp_enabled", ""),
        ("recovery_code_used", "9 left"),
        ("login", "with a recovery code"),
        ("login", "with an authenticator code"),
        ("passkey_added", "Phone"),
        ("login", "with a passkey"),
        ("passkey_removed", "Phone"),
        ("totp_disabled", ""),
    ]:
        assert wanted in events, (wanted, events)
    notices = [
        m.get_body(("plain",)).get_content()
        for m in mailbox.to(alice.email)
        if m["Subject"] == "A sign-in change on your SuccessDiary account"
    ]
    for phrase in [
        "turned on",
        "recovery code was used",
        "“Phone” was added",
        "“Phone” was removed",
        "turned off",
    ]:
        assert any(phrase in n for n in notices), (phrase, notices)
    activity = await client.get("/settings")
    assert (
        "Added a passkey (Phone)" in activity.text and "Turned on two-step sign-in" in activity.text
    )


async def test_row42_adding_a_passkey_signs_out_every_other_session(client, alice, session):
    other = httpx.AsyncClient(transport=client._transport, base_url="http://testserver")
    async with other:
        await sign_in(other, alice.email)
        assert (await other.get("/settings")).status_code == 200
        await sign_in(client, alice.email)
        assert (await add_passkey(client, SoftAuthenticator())).status_code == 200
        assert (await other.get("/settings")).status_code == 303
        assert (await client.get("/settings")).status_code == 200


async def test_row42_one_account_cannot_remove_anothers_passkey(client, alice, bob, session):
    alice_id = alice.id
    await sign_in(client, alice.email)
    assert (await add_passkey(client, SoftAuthenticator())).status_code == 200
    key = (await session.execute(select(Passkey))).scalar_one()
    client.cookies.clear()
    await sign_in(client, bob.email)
    foreign = await post_form(client, f"/settings/passkeys/{key.id}/delete", {})
    assert foreign.status_code == 404
    session.expire_all()
    assert (await session.execute(select(Passkey))).scalar_one().user_id == alice_id


async def test_row41_the_ten_a_day_are_counted_atomically_across_workers_through_redis(redis_url):
    """Two workers' limiters sharing one Redis: 20 racing wrong codes, exactly 10 are judged."""
    first, second = AuthLimiter(redis_url), AuthLimiter(redis_url)
    await first.reset()
    user = "7f0c4d1e-0000-4000-8000-000000000041"
    tries = [(first if n % 2 else second).otp_attempt(user, f"192.0.2.{n}") for n in range(20)]
    assert sum(await asyncio.gather(*tries)) == 10
    assert not await first.otp_attempt(user, "192.0.2.99")
    await second.otp_succeeded(user, "192.0.2.1")  # a right code gives its slot back
    assert await first.otp_attempt(user, "192.0.2.1")
    await first.reset()


def _request(settings, host: str):
    from types import SimpleNamespace

    from starlette.requests import Request

    app = SimpleNamespace(state=SimpleNamespace(settings=settings))
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/login/passkey/options",
        "headers": [(b"host", host.encode())],
        "scheme": "http",
        "server": (host.partition(":")[0], int(host.partition(":")[2] or 80)),
        "app": app,
        "query_string": b"",
    }
    return Request(scope)


def test_row42_the_rp_id_and_origin_come_from_base_url_or_the_loopback_name_in_use():
    from app.config import Settings
    from app.routes.pages_twofactor import relying_party

    common = {"database_url": "sqlite+aiosqlite:///:memory:", "secret_key": "k" * 40}
    public = Settings(_env_file=None, base_url="https://diary.example", **common)
    rp = relying_party(_request(public, "evil.example"))
    assert (rp.rp_id, rp.origins) == ("diary.example", ["https://diary.example"])
    local = Settings(_env_file=None, environment="development", **common)
    assert local.loopback_origins
    rp = relying_party(_request(local, "localhost:8123"))
    assert (rp.rp_id, rp.origins) == ("localhost", ["http://localhost:8123"])
    # Another name for this development server is not a loopback one: BASE_URL's default stands.
    rp = relying_party(_request(local, "evil.example:8123"))
    assert (rp.rp_id, rp.origins) == ("localhost", ["http://localhost:8000"])
