"""Issue 19: an authenticator app (TOTP) through the API and the pages, with real 30-second time
steps on a frozen clock, recovery codes, disabling, the nudge, audit trail and notices."""

import re
import time

import time_machine
from sqlalchemy import select

from app.models import AccessToken, RecoveryCode, TwoFactor
from app.services import twofactor
from tests.conftest import Mailbox, settle
from tests.factories import PASSWORD, bearer_token, post_form, sign_in
from tests.twofactor_steps import (
    START,
    api_login,
    at,
    code_step,
    password_step,
    session_cookie_set,
    turn_on_totp,
)

SETUP = "/api/v1/users/me/totp/setup"
ENABLE = "/api/v1/users/me/totp/enable"
DISABLE = "/api/v1/users/me/totp/disable"


async def test_setup_needs_the_password_and_gives_a_secret_and_an_otpauth_uri(client, alice):
    headers = {"Authorization": f"Bearer {await bearer_token(client, alice.email)}"}
    wrong = await client.post(SETUP, json={"current_password": "nope"}, headers=headers)
    assert wrong.status_code == 400 and wrong.json() == {"detail": "INVALID_PASSWORD"}
    right = await client.post(SETUP, json={"current_password": PASSWORD}, headers=headers)
    assert right.status_code == 200
    body = right.json()
    assert re.fullmatch(r"[A-Z2-7]{32}", body["secret"])
    assert body["otpauth_uri"].startswith("otpauth://totp/SuccessDiary:alice%40example.com?")
    assert (
        f"secret={body['secret']}" in body["otpauth_uri"]
        and "issuer=SuccessDiary" in body["otpauth_uri"]
    )
    # Not in force until enabled: the password alone still signs in.
    assert (await api_login(client, alice.email)).status_code == 200


async def test_the_secret_is_stored_encrypted_and_recovery_codes_hashed(
    client, alice, session, settings
):
    with time_machine.travel(START, tick=False):
        secret, codes, _ = await turn_on_totp(client, alice.email)
    row = (await session.execute(select(TwoFactor))).scalar_one()
    assert row.totp_enabled and row.totp_secret and secret not in row.totp_secret
    assert twofactor.decrypt_secret(settings.secret_key, alice.id, row.totp_secret) == secret
    assert (
        twofactor.decrypt_secret("another-secret-key-0123456789abcdef", alice.id, row.totp_secret)
        is None
    )
    assert len(codes) == 10 and len(set(codes)) == 10
    assert all(re.fullmatch(r"[0-9a-f]{5}-[0-9a-f]{5}", c) for c in codes)
    stored = (await session.execute(select(RecoveryCode.code_hash))).scalars().all()
    assert len(stored) == 10
    plain = {c.replace("-", "") for c in codes}
    assert not plain & set(stored) and all(len(h) == 64 for h in stored)


async def test_enable_refuses_a_wrong_code_and_a_second_enable(client, alice):
    with time_machine.travel(START, tick=False):
        headers = {"Authorization": f"Bearer {await bearer_token(client, alice.email)}"}
        nothing = await client.post(ENABLE, json={"code": "123456"}, headers=headers)
        assert nothing.status_code == 409 and nothing.json() == {"detail": "TOTP_NOT_SET_UP"}
        secret = (
            await client.post(SETUP, json={"current_password": PASSWORD}, headers=headers)
        ).json()["secret"]
        right = at(secret, time.time())
        wrong = "000000" if right != "000000" else "111111"
        refused = await client.post(ENABLE, json={"code": wrong}, headers=headers)
        assert refused.status_code == 400 and refused.json() == {"detail": "INVALID_CODE"}
        ok = await client.post(ENABLE, json={"code": right}, headers=headers)
        assert ok.status_code == 200
        again = await client.post(SETUP, json={"current_password": PASSWORD}, headers=headers)
        assert again.status_code == 409 and again.json() == {"detail": "TOTP_ALREADY_ENABLED"}


async def test_api_logins_ask_for_the_otp_and_take_the_right_one(client, alice):
    with time_machine.travel(START, tick=False) as clock:
        secret, _, _ = await turn_on_totp(client, alice.email)
        clock.shift(30)
        missing = await api_login(client, alice.email)
        assert missing.status_code == 401 and missing.json() == {"detail": "OTP_REQUIRED"}
        bad_password = await api_login(
            client, alice.email, otp=at(secret, time.time()), password="wrong one"
        )
        right = at(secret, time.time())
        wrong_code = await api_login(
            client, alice.email, otp="000000" if right != "000000" else "111111"
        )
        assert bad_password.status_code == wrong_code.status_code == 400
        assert bad_password.json() == wrong_code.json() == {"detail": "LOGIN_BAD_CREDENTIALS"}
        token = await api_login(client, alice.email, otp=right)
        assert token.status_code == 200
        me = await client.get(
            "/api/v1/users/me", headers={"Authorization": f"Bearer {token.json()['access_token']}"}
        )
        assert me.status_code == 200
        cookie = await client.post(
            "/api/v1/auth/cookie/login",
            data={"username": alice.email, "password": PASSWORD, "otp": right},
        )
        assert cookie.status_code == 400  # the same code again: replay
        clock.shift(30)
        cookie = await client.post(
            "/api/v1/auth/cookie/login",
            data={"username": alice.email, "password": PASSWORD, "otp": at(secret, time.time())},
        )
        assert cookie.status_code == 204


async def test_the_codes_of_the_steps_next_to_now_work_and_older_ones_do_not(client, alice):
    with time_machine.travel(START, tick=False) as clock:
        secret, _, _ = await turn_on_totp(client, alice.email)
        clock.shift(120)
        now = time.time()
        assert (await api_login(client, alice.email, otp=at(secret, now - 60))).status_code == 400
        assert (await api_login(client, alice.email, otp=at(secret, now - 30))).status_code == 200
        assert (await api_login(client, alice.email, otp=at(secret, now + 30))).status_code == 200
        # The step after next was never shown, and the current one is older than the last used.
        assert (await api_login(client, alice.email, otp=at(secret, now + 60))).status_code == 400
        assert (await api_login(client, alice.email, otp=at(secret, now))).status_code == 400


async def test_disable_needs_the_password_and_a_code_then_the_password_alone_works(
    client, alice, app, mailbox: Mailbox
):
    with time_machine.travel(START, tick=False) as clock:
        secret, codes, headers = await turn_on_totp(client, alice.email)
        clock.shift(30)
        code = at(secret, time.time())
        wrong_pw = await client.post(
            DISABLE, json={"current_password": "x", "code": code}, headers=headers
        )
        assert wrong_pw.status_code == 400 and wrong_pw.json() == {"detail": "INVALID_PASSWORD"}
        bad = "000000" if code != "000000" else "111111"
        wrong_code = await client.post(
            DISABLE, json={"current_password": PASSWORD, "code": bad}, headers=headers
        )
        assert wrong_code.status_code == 400 and wrong_code.json() == {"detail": "INVALID_CODE"}
        off = await client.post(
            DISABLE, json={"current_password": PASSWORD, "code": codes[0]}, headers=headers
        )
        assert off.status_code == 200 and off.json() == {"status": "disabled"}
        again = await client.post(
            DISABLE, json={"current_password": PASSWORD, "code": code}, headers=headers
        )
        assert again.status_code == 409
        assert (await api_login(client, alice.email)).status_code == 200
        await settle(app)
    subjects = [m["Subject"] for m in mailbox.to(alice.email)]
    assert subjects.count("A sign-in change on your SuccessDiary account") == 2
    texts = [m.get_body(("plain",)).get_content() for m in mailbox.to(alice.email)]
    assert any("turned on" in t for t in texts) and any("turned off" in t for t in texts)


async def test_turning_totp_on_signs_out_every_other_session(client, alice, session):
    other = await bearer_token(client, alice.email)
    with time_machine.travel(START, tick=False):
        _, _, headers = await turn_on_totp(client, alice.email)
    assert (await client.get("/api/v1/users/me", headers=headers)).status_code == 200
    gone = await client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {other}"})
    assert gone.status_code == 401
    assert len((await session.execute(select(AccessToken))).scalars().all()) == 1


async def test_the_page_login_asks_for_the_code_on_a_second_step(client, alice, app):
    with time_machine.travel(START, tick=False) as clock:
        secret, _, _ = await turn_on_totp(client, alice.email)
        client.cookies.clear()
        clock.shift(30)
        first = await password_step(client, alice.email, next="/entries")
        assert first.status_code == 303 and first.headers["location"] == "/login/second-step"
        assert not session_cookie_set(first)
        assert (await client.get("/entries")).status_code == 303  # not signed in yet
        page = await client.get("/login/second-step")
        assert page.status_code == 200 and "authenticator app" in page.text
        right = at(secret, time.time())
        wrong = await code_step(client, "000000" if right != "000000" else "111111")
        assert wrong.status_code == 422 and "not right" in wrong.text
        done = await code_step(client, right)
        assert done.status_code == 303 and done.headers["location"] == "/entries"
        assert session_cookie_set(done)
        assert (await client.get("/entries")).status_code == 200
        await settle(app)
        activity = await client.get("/api/v1/users/me/activity", headers={})
        kinds = [(e["kind"], e["summary"]) for e in activity.json()["items"]]
        assert any(k == "login" and "authenticator code" in s for k, s in kinds), kinds


async def test_a_recovery_code_on_the_page_says_how_many_remain(client, alice, app, mailbox):
    with time_machine.travel(START, tick=False):
        _, codes, _ = await turn_on_totp(client, alice.email)
        client.cookies.clear()
        await password_step(client, alice.email)
        done = await code_step(client, codes[3].upper().replace("-", " "))
        assert done.status_code == 303
        home = await client.get(done.headers["location"])
        assert "9 recovery codes remain" in home.text
        await settle(app)
    assert any(
        "9 of your recovery codes" in m.get_body(("plain",)).get_content()
        for m in mailbox.to(alice.email)
    )


async def test_the_settings_page_sets_up_totp_with_an_inline_svg_qr_code(client, alice, session):
    await sign_in(client, alice.email)
    page = await client.get("/settings")
    assert "Two-step sign-in" in page.text and "Set up an authenticator app" in page.text
    setup = await post_form(client, "/settings/totp/setup", {"current_password": PASSWORD})
    assert setup.status_code == 200
    assert "<svg" in setup.text and 'class="segno"' in setup.text and "style=" not in setup.text
    assert re.findall(r"<img[^>]*>", setup.text) == [
        re.search(r"<img[^>]*favicon[^>]*>", setup.text).group(0)
    ]
    secret = re.search(r"data-totp-secret>([A-Z2-7]{32})<", setup.text).group(1)
    with time_machine.travel(START, tick=False):
        wrong = await post_form(client, "/settings/totp/enable", {"code": "12345x"})
        assert wrong.status_code == 422 and "<svg" in wrong.text
        enabled = await post_form(
            client, "/settings/totp/enable", {"code": at(secret, time.time())}
        )
    assert enabled.status_code == 200
    shown = re.findall(r"<li>([0-9a-f]{5}-[0-9a-f]{5})</li>", enabled.text)
    assert len(shown) == 10
    after = await client.get("/settings")
    assert "10 of 10 recovery codes left" in after.text


async def test_the_settings_page_nudges_until_dismissed(client, alice):
    await sign_in(client, alice.email)
    assert "data-twofactor-nudge" in (await client.get("/settings")).text
    dismissed = await post_form(client, "/settings/twofactor/dismiss", {})
    assert dismissed.status_code == 303
    assert "data-twofactor-nudge" not in (await client.get("/settings")).text


async def test_accounts_without_a_second_step_sign_in_as_before(client, alice):
    response = await password_step(client, alice.email)
    assert response.status_code == 303 and response.headers["location"] == "/"
    assert session_cookie_set(response)
    client.cookies.clear()
    assert (await api_login(client, alice.email, otp="123456")).status_code == 200


async def test_new_recovery_codes_replace_the_old_ones(client, alice, app, mailbox: Mailbox):
    with time_machine.travel(START, tick=False) as clock:
        secret, old, _ = await turn_on_totp(client, alice.email)
        clock.shift(30)
        client.cookies.clear()
        await password_step(client, alice.email)
        await code_step(client, at(secret, time.time()))
        page = await client.get("/settings")
        assert "Make new recovery codes" in page.text
        refused = await post_form(
            client, "/settings/totp/recovery-codes", {"current_password": "x"}
        )
        assert refused.status_code == 303
        renewed = await post_form(
            client, "/settings/totp/recovery-codes", {"current_password": PASSWORD}
        )
        assert renewed.status_code == 200 and "The old ones no longer work" in renewed.text
        new = re.findall(r"<li>([0-9a-f]{5}-[0-9a-f]{5})</li>", renewed.text)
        assert len(new) == 10 and not set(new) & set(old)
        client.cookies.clear()
        assert (await api_login(client, alice.email, otp=old[0])).status_code == 400
        assert (await api_login(client, alice.email, otp=new[0])).status_code == 200
        await settle(app)
    texts = [m.get_body(("plain",)).get_content() for m in mailbox.to(alice.email)]
    assert any("New recovery codes were made" in t for t in texts)
