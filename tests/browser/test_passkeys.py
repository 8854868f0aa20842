"""Passkeys in Chromium (issue 19): register one on the settings page and sign in with it from
/login without a password, through DevTools' virtual authenticator (CTAP2, internal transport,
resident keys, user verification), at desktop size and on a 390x844 phone, with no console
error and no CSP violation. The server runs as a user runs it, on http://localhost:<port>:
WebAuthn needs a host name for its RP ID (an IP address is refused by the browser)."""

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pyotp
import pytest

from tests.browser.plugin import uvicorn_server
from tests.browser.test_axe import audit, table
from tests.browser.test_signup_flow import VIEWPORTS, no_problems, shot, watched_page
from tests.conftest import Mailbox, free_port
from tests.factories import PASSWORD
from tests.live_server import create_user


@pytest.fixture(scope="module")
def localhost_server(
    mailbox: Mailbox, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, dict[str, str]]]:
    import os

    port = free_port()
    base = f"http://localhost:{port}"
    folder = tmp_path_factory.mktemp("passkeys")
    env = {
        **os.environ,
        "ENVIRONMENT": "development",
        "DATABASE_URL": f"sqlite+aiosqlite:///{folder / 'live.sqlite3'}",
        "BASE_URL": base,
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(mailbox.port),
        "SECRET_KEY": "passkey-browser-test-secret-0123456789-abcdef",
    }
    env.pop("REDIS_URL", None)
    with uvicorn_server(env, folder, port):
        yield base, env


@pytest.fixture(params=list(VIEWPORTS))
async def page(request: pytest.FixtureRequest, chromium: Any) -> AsyncIterator[Any]:
    context = await chromium.new_context(**VIEWPORTS[request.param])
    page = await watched_page(context, request.param)
    cdp = await context.new_cdp_session(page)
    await cdp.send("WebAuthn.enable")
    added = await cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )
    page.cdp, page.authenticator = cdp, added["authenticatorId"]
    yield page
    await context.close()


async def test_a_passkey_is_added_in_settings_then_signs_in_without_a_password(
    page: Any, localhost_server: tuple[str, dict[str, str]]
):
    base, env = localhost_server
    email = f"passkey-{page.viewport_name}@example.com"
    create_user(env, email)

    await page.goto(f"{base}/login")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in", exact=True).click()
    await page.wait_for_url(f"{base}/")

    await page.goto(f"{base}/settings")
    await page.get_by_text("A password alone guards your diary").wait_for()
    await page.get_by_label("Name for the new passkey").fill("Virtual key")
    await page.get_by_role("button", name="Add a passkey").click()
    await page.get_by_text("Passkey “Virtual key” added").wait_for()
    await page.get_by_text("never used yet").wait_for()
    stored = await page.cdp.send("WebAuthn.getCredentials", {"authenticatorId": page.authenticator})
    assert len(stored["credentials"]) == 1 and stored["credentials"][0]["isResidentCredential"]
    await shot(page, "passkey-settings")
    await no_problems(page)

    await page.context.clear_cookies()
    await page.goto(f"{base}/login?next=/entries")
    await page.get_by_role("button", name="Use a passkey").click()
    await page.wait_for_url(f"{base}/entries")
    await page.goto(f"{base}/settings")
    await page.get_by_text("Added a passkey (Virtual key)").wait_for()
    assert await page.get_by_text("never used yet").count() == 0
    assert await page.get_by_text("Signed in (with a passkey)").count() >= 1
    await shot(page, "passkey-signed-in")
    await no_problems(page)

    # Removing it: the login page's passkey button then finds no account for the credential.
    await page.get_by_role("button", name="Remove passkey Virtual key").click()
    await page.get_by_text("Passkey removed.").wait_for()
    await no_problems(page)


async def test_the_login_page_says_so_when_the_browser_has_no_webauthn(
    page: Any, localhost_server: tuple[str, dict[str, str]]
):
    base, _ = localhost_server
    await page.add_init_script("delete window.PublicKeyCredential;")
    await page.goto(f"{base}/login")
    await page.get_by_text("This browser cannot use passkeys").wait_for()
    assert await page.get_by_role("button", name="Use a passkey").is_disabled()
    await no_problems(page)


async def test_an_authenticator_app_is_set_up_from_the_qr_page_and_asked_for_at_sign_in(
    page: Any, localhost_server: tuple[str, dict[str, str]]
):
    """The TOTP pages in Chromium: QR code, recovery codes, the second step; axe finds nothing
    on any of them, nor on /login and /settings with the passkey controls."""
    base, env = localhost_server
    email = f"totp-{page.viewport_name}@example.com"
    create_user(env, email)
    size = "390x844" if page.viewport_name == "phone" else "1280x900"
    violations = []

    await page.goto(f"{base}/login")
    violations += await audit(page, "passkey-login", size, "light")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in", exact=True).click()
    await page.wait_for_url(f"{base}/")
    await page.goto(f"{base}/settings")
    violations += await audit(page, "twofactor-settings", size, "light")
    await page.locator("#tfs-current_password").fill(PASSWORD)
    await page.get_by_role("button", name="Set up an authenticator app").click()
    qr = page.get_by_role("img", name="QR code holding the secret for your authenticator app")
    await qr.wait_for()
    box = await qr.locator("svg").bounding_box()
    assert box["width"] >= 100 and box["height"] >= 100
    violations += await audit(page, "totp-setup", size, "light")
    secret = (await page.locator("[data-totp-secret]").inner_text()).strip()
    await page.get_by_label("6-digit code").fill(pyotp.TOTP(secret).now())
    await page.get_by_role("button", name="Turn on").click()
    await page.get_by_role("heading", name="Your recovery codes").wait_for()
    codes = await page.locator("[data-recovery-codes] li").all_inner_texts()
    assert len(codes) == 10
    violations += await audit(page, "recovery-codes", size, "light")
    await no_problems(page)

    await page.context.clear_cookies()
    await page.goto(f"{base}/login")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in", exact=True).click()
    await page.wait_for_url(f"{base}/login/second-step")
    violations += await audit(page, "second-step", size, "light")
    await page.get_by_label("Code").fill(codes[0])
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(f"{base}/")
    await page.get_by_text("9 recovery codes remain").wait_for()
    await shot(page, "totp-recovery-used")
    await no_problems(page)
    assert not violations, table(violations)
