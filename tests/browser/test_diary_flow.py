"""The diary on a phone, in Chromium: quick-add, edit in place, delete and undo, search as you type."""

import time
from typing import Any

import httpx
import pytest
from playwright.async_api import expect

from tests.browser.test_signup_flow import no_problems, shot, wait_for_code
from tests.conftest import Mailbox
from tests.factories import PASSWORD

PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}


@pytest.fixture
async def phone(chromium: Any, live_server: str, mailbox: Mailbox) -> Any:
    """A phone whose user signed up through the API and signed in through the page."""
    from tests.browser.test_signup_flow import WATCH, expected

    email = f"diary-{time.time_ns()}@example.com"
    async with httpx.AsyncClient(base_url=live_server) as api:
        await api.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
        code = await wait_for_code(mailbox, email)
        assert (
            await api.post("/api/v1/auth/verify", json={"email": email, "code": code})
        ).status_code == 200
    context = await chromium.new_context(**PHONE)
    await context.add_init_script(WATCH)
    page = await context.new_page()
    page.problems = []
    page.viewport_name = "phone"
    page.on(
        "console",
        lambda m: m.type == "error" and not expected(m.text) and page.problems.append(m.text),
    )
    page.on("pageerror", lambda e: page.problems.append(str(e)))
    page.on("dialog", lambda dialog: dialog.accept())
    await page.goto(f"{live_server}/login")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(f"{live_server}/")
    yield page
    await context.close()


async def quick_add(page: Any, title: str, body: str) -> None:
    form = page.locator("#quick-add")
    await form.get_by_label("Title").fill(title)
    await form.get_by_label("What happened").fill(body)
    await form.get_by_role("button", name="Save win").click()
    await page.get_by_role("heading", name=title).wait_for()


async def test_quick_add_edit_undo_delete_and_search_on_a_phone(phone: Any, live_server: str):
    page = phone
    await page.goto(f"{live_server}/entries")
    await quick_add(page, "Ran my first 10k", "Felt **strong** the whole way. #running")
    await quick_add(page, "Shipped the release", "On time, no bugs. #work")
    assert page.url == f"{live_server}/entries", "added without a page load"
    assert await page.locator("#quick-add").get_by_label("Title").input_value() == "", (
        "a fresh form"
    )

    entry = page.locator("article", has_text="Shipped the release")
    await entry.get_by_role("link", name="Edit", exact=True).click()
    edit_form = page.locator("form[id^=entry-]")
    await edit_form.get_by_label("Title").fill("Shipped the big release")
    await edit_form.get_by_role("button", name="Save changes").click()
    await page.get_by_role("heading", name="Shipped the big release").wait_for()

    await (
        page.locator("article", has_text="Ran my first 10k")
        .get_by_role("link", name="Delete")
        .click()
    )
    await page.get_by_role("button", name="Delete").click()  # asked once, inline
    await page.get_by_role("button", name="Undo").click()
    await page.get_by_role("heading", name="Ran my first 10k").wait_for()

    await page.get_by_label("Search your wins").fill("runs")
    await expect(page.locator("#results article")).to_have_count(1)
    assert "Ran my first 10k" in await page.locator("#results").inner_text()
    assert await page.locator("#results mark").count() >= 1
    assert "q=runs" in page.url, "the search is in the address, so it can be shared or reloaded"
    await shot(page, "entries-search")
    await no_problems(page)
