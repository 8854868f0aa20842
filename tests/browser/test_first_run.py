"""A newcomer's first minute, in Chromium in Tokyo at 05:00 local: sign up through the pages
on the address uvicorn prints, read the code at /dev/mail (no mail server runs), verify, sign
in and add a win; it is filed under Tokyo's today, which is not UTC's.

The server is started as `make run` starts it (development, BASE_URL unset), by the test-only
factory tests/browser/frozen_clock.py at the same instant the browser's clock shows.
"""

import os
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from playwright.async_api import expect

from tests.browser.plugin import sign_in, uvicorn_server
from tests.browser.test_signup_flow import WATCH, expected, no_problems, shot
from tests.conftest import free_port
from tests.factories import PASSWORD

TOKYO = timedelta(hours=9)


def tokyo_five_am() -> datetime:
    """The latest instant, up to now, at which it was 05:00 in Tokyo (20:00 UTC the day before)."""
    now = datetime.now(UTC)
    instant = now.replace(hour=20, minute=0, second=0, microsecond=0)
    return instant if instant <= now else instant - timedelta(days=1)


AT = tokyo_five_am()
TOKYO_TODAY = (AT + TOKYO).date()


@pytest.fixture(scope="module")
def newcomer_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Development, no BASE_URL, no mail server listening, the clock at Tokyo's 05:00."""
    folder = tmp_path_factory.mktemp("first-run")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BASE_URL", "SMTP"))}
    env.update(
        ENVIRONMENT="development",
        DATABASE_URL=f"sqlite+aiosqlite:///{folder / 'db.sqlite3'}",
        SECRET_KEY="first-run-browser-secret-key-0123456789-abcdef",
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=str(free_port()),  # nothing listens there
        SMTP_TIMEOUT="2",
        FROZEN_CLOCK_AT=AT.isoformat(),
    )
    env.pop("REDIS_URL", None)
    # uvicorn prints http://127.0.0.1:PORT, the address a newcomer opens.
    with uvicorn_server(env, folder, free_port(), "tests.browser.frozen_clock:create_app") as base:
        yield base
    assert (folder / "dev-mail").is_dir(), "the outbox sits beside the SQLite database"


def framed_script_blocked(text: str) -> bool:
    """Playwright puts its init scripts in every frame; the mail's sandbox refuses them."""
    return "/dev/mail/" in text and "frame is sandboxed" in text


async def new_page(chromium: Any, zone: str) -> Any:
    context = await chromium.new_context(
        timezone_id=zone,
        locale="en-GB",
        viewport={"width": 390, "height": 844},
        is_mobile=True,
        has_touch=True,
    )
    await context.add_init_script(WATCH)
    page = await context.new_page()
    await page.clock.set_fixed_time(AT)
    page.problems = []
    page.viewport_name = f"phone-{zone.replace('/', '-')}"
    page.on(
        "console",
        lambda m: (
            m.type == "error"
            and not expected(m.text)
            and not framed_script_blocked(m.text)
            and page.problems.append(m.text)
        ),
    )
    page.on("pageerror", lambda e: page.problems.append(str(e)))
    return page


async def test_a_newcomer_in_tokyo_at_5am_signs_up_reads_the_code_and_files_a_win_under_today(
    chromium: Any, newcomer_server: str
):
    assert AT.date() != TOKYO_TODAY, "in Tokyo it is already tomorrow in UTC's terms"
    base, email = newcomer_server, f"kei-{time.time_ns()}@example.com"
    page = await new_page(chromium, "Asia/Tokyo")
    assert await page.evaluate("new Date().getHours()") == 5

    await page.goto(f"{base}/register")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Create account").click()
    await page.wait_for_url("**/verify?email=*")
    status = page.locator("#mail-status")
    await expect(status).to_contain_text("No mail server answered", timeout=15_000)
    await expect(page.locator("#flashes")).to_have_text(re.compile(r"^\s*$"))
    assert "We could not send" not in await page.content()
    await shot(page, "first-run-verify")

    await status.get_by_role("link", name="/dev/mail").click()
    await page.wait_for_url(f"{base}/dev/mail")
    message = page.locator("article", has_text=email).first
    await expect(message).to_contain_text("not sent")
    found = re.search(r"\b(\d{6})\b", await message.locator("[data-mail-text]").inner_text())
    assert found, "the code is readable on /dev/mail"
    await shot(page, "first-run-dev-mail")
    await page.go_back()

    await page.get_by_label("6-digit code").fill(found.group(1))
    await page.get_by_role("button", name="Confirm").click()
    await page.wait_for_url("**/login?email=*")
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(f"{base}/")

    await page.goto(f"{base}/entries")
    form = page.locator("#quick-add")
    assert await form.get_by_label("Date").input_value() == TOKYO_TODAY.isoformat()
    await form.get_by_label("Title").fill("Up before the sun")
    await form.get_by_role("button", name="Save win").click()
    await page.get_by_role("heading", name="Up before the sun").wait_for()
    mine = await page.context.request.get(f"{base}/api/v1/entries")
    assert [e["day"] for e in (await mine.json())["items"]] == [TOKYO_TODAY.isoformat()]
    preferences = await page.context.request.get(f"{base}/api/v1/users/me/preferences")
    assert (await preferences.json())["timezone"] == "Asia/Tokyo"
    await no_problems(page)
    await page.context.close()

    travelling = await new_page(chromium, "America/New_York")
    await sign_in(travelling, base, email)
    await travelling.goto(f"{base}/settings")
    offer = travelling.get_by_text("Your browser is in America/New_York")
    await expect(offer).to_be_visible()
    await shot(travelling, "first-run-settings")
    picker = travelling.get_by_label("Time zone", exact=True)
    await travelling.get_by_label("Search time zones").fill("new york")
    await travelling.get_by_label("Search time zones").press("Tab")
    await expect(picker).to_have_value("America/New_York")  # a place's name finds its zone
    await travelling.get_by_label("Search time zones").fill("Asia/Tokyo")
    await travelling.get_by_label("Search time zones").press("Tab")
    await expect(picker).to_have_value("Asia/Tokyo")
    await travelling.get_by_role("button", name="use it?").click()
    await travelling.get_by_text("Preferences saved.").wait_for()
    await expect(travelling.get_by_label("Time zone", exact=True)).to_have_value("America/New_York")
    await expect(offer).to_be_hidden()
    await no_problems(travelling)
    await travelling.context.close()
