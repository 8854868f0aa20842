"""The flow that matters most, in Chromium: sign up with the mailed code, sign in, sign out.

Run at desktop size and on a 390x844 phone, with no console errors and no CSP violations.
"""

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from playwright.async_api import expect

from tests.browser.conftest import SHOTS
from tests.conftest import Mailbox
from tests.factories import PASSWORD

WATCH = """
window.__problems = [];
document.addEventListener('securitypolicyviolation', e =>
  window.__problems.push('CSP ' + e.violatedDirective + ' ' + e.blockedURI + ' ' + e.sourceFile));
"""
VIEWPORTS = {
    "desktop": {"viewport": {"width": 1280, "height": 800}},
    "phone": {
        "viewport": {"width": 390, "height": 844},
        "is_mobile": True,
        "has_touch": True,
        "device_scale_factor": 3,
    },
}


async def wait_for_code(mailbox: Mailbox, email: str) -> str:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if mailbox.to(email):
            return mailbox.code_for(email)
        await asyncio.sleep(0.1)
    raise AssertionError(f"no code mailed to {email}")


async def watched_page(context: Any, name: str) -> Any:
    """A new page of `context` whose CSP violations, console errors and page errors collect in
    `page.problems` (see no_problems); `name` labels its screenshots."""
    await context.add_init_script(WATCH)
    page = await context.new_page()
    page.problems = []
    page.on(
        "console",
        lambda m: (
            m.type == "error"
            and not expected(m.text)
            and page.problems.append(f"console: {m.text}")
        ),
    )
    page.on("pageerror", lambda e: page.problems.append(f"page error: {e}"))
    page.viewport_name = name
    return page


@pytest.fixture(params=list(VIEWPORTS))
async def page(request: pytest.FixtureRequest, chromium: Any) -> AsyncIterator[Any]:
    context = await chromium.new_context(**VIEWPORTS[request.param])
    yield await watched_page(context, request.param)
    await context.close()


def expected(text: str) -> bool:
    """Chromium logs every 4xx fetch; a 422 is how a form says what to fix, not a fault."""
    return "the server responded with a status of 422" in text


async def no_problems(page: Any) -> None:
    problems = page.problems + await page.evaluate("window.__problems || []")
    assert problems == [], problems


async def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(SHOTS / f"{name}-{page.viewport_name}.png"), full_page=True)


async def test_a_visitor_signs_up_with_the_mailed_code_then_signs_in_and_out(
    page: Any, live_server: str, mailbox: Mailbox
):
    email = f"{page.viewport_name}-{time.time_ns()}@example.com"
    await page.goto(f"{live_server}/register")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Create account").click()
    await page.wait_for_url("**/verify?email=*")
    assert "We sent a 6-digit code" in await page.content()
    await no_problems(page)

    await page.get_by_label("6-digit code").fill(await wait_for_code(mailbox, email))
    await page.get_by_role("button", name="Confirm").click()
    await page.wait_for_url("**/login?email=*")
    assert await page.get_by_label("Email").input_value() == email

    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(f"{live_server}/")
    await page.get_by_text("Here is what comes next").wait_for()
    await shot(page, "home")
    await no_problems(page)

    if page.viewport_name == "phone":
        nav = page.locator("nav[aria-label=Main]")
        assert not await nav.get_by_role("link", name="Settings").first.is_visible(), (
            "the menu is collapsed on a phone"
        )
    await page.get_by_label("Menu").click()  # Sign out is in the menu on every screen
    await page.get_by_role("button", name="Sign out").locator("visible=true").click()
    await page.wait_for_url("**/login?signed_out=1")
    await page.get_by_text("You have signed out").wait_for()
    stored = await page.evaluate("JSON.stringify([localStorage, sessionStorage])")
    assert email not in stored and "Here is what comes next" not in stored, stored
    keys = await page.evaluate("[...Object.keys(localStorage), ...Object.keys(sessionStorage)]")
    assert set(keys) <= {"sd-theme", "htmx-current-path-for-history"}, (
        "only the theme and htmx's current path"
    )
    await page.goto(f"{live_server}/settings")
    await page.wait_for_url("**/login?next=/settings")
    await no_problems(page)


async def test_form_errors_appear_inline_with_htmx(page: Any, live_server: str):
    await page.goto(f"{live_server}/register")
    await page.get_by_label("Email").fill("someone@example.com")
    await page.get_by_label("Password").fill("password1")
    await page.get_by_role("button", name="Create account").click()
    await page.locator("#f-password-error").wait_for()
    assert page.url.endswith("/register"), "no page load: the form was swapped in place"
    assert await page.get_by_label("Password").get_attribute("aria-invalid") == "true"
    # Focus moves to the field to fix once htmx has settled the swap.
    await expect(page.get_by_label("Password")).to_be_focused()
    await shot(page, "register-error")
    await no_problems(page)


async def test_the_theme_switch_turns_dark_mode_on_and_remembers_it(page: Any, live_server: str):
    await page.goto(f"{live_server}/login")
    await page.get_by_role("button", name="Dark").click()
    assert "dark" in (await page.locator("html").get_attribute("class") or "")
    await page.reload()
    assert "dark" in (await page.locator("html").get_attribute("class") or "")
    assert await page.get_by_role("button", name="Dark").get_attribute("aria-pressed") == "true"
    await shot(page, "login-dark")
    await no_problems(page)


@pytest.mark.parametrize(("path", "ready"), [("/docs", ".opblock"), ("/redoc", "h1")])
async def test_the_api_docs_render_under_the_strict_csp(
    page: Any, live_server: str, path: str, ready: str
):
    await page.goto(f"{live_server}{path}")
    await page.locator(ready).first.wait_for()
    assert "SuccessDiary API" in await page.content()
    await no_problems(page)
