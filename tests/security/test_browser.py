"""SECURITY.md rows 16 and 18 in headless Chromium, on a desktop and on a 390x844 phone.

Row 16: every page, chart and HTMX swap runs under the strict CSP with no violation and no
console error. Row 18: signing out leaves no diary text in the browser, and every sign-out
answer tells the browser to clear the site's cache, cookies and storage.
"""

import time
from typing import Any

import httpx
from playwright.async_api import expect

from tests.browser import plugin, test_signup_flow
from tests.browser.test_diary_flow import quick_add
from tests.browser.test_signup_flow import no_problems, wait_for_code
from tests.conftest import Mailbox
from tests.factories import PASSWORD, bearer_token, csrf_token, post_form, sign_in

page = test_signup_flow.page  # the fixture: a fresh Chromium tab, on a desktop and on a phone
CLEARED = '"cache", "cookies", "storage"'
PUBLIC = [
    ("/", "h1"),
    ("/register", "form"),
    ("/verify?email=someone%40example.com", "form"),
    ("/login", "form"),
    ("/forgot-password", "form"),
    ("/reset-password?token=not-a-real-token", "form"),
    ("/docs", ".opblock"),
    ("/redoc", "h1"),
]
CHARTS = ("timeline-chart", "categories-chart")


async def new_account(live_server: str, mailbox: Mailbox, name: str) -> str:
    """A verified account made through the API, as a visitor would with the mailed code."""
    email = f"{name}-{time.time_ns()}@example.com"
    async with httpx.AsyncClient(base_url=live_server) as api:
        await api.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
        code = await wait_for_code(mailbox, email)
        verified = await api.post("/api/v1/auth/verify", json={"email": email, "code": code})
        assert verified.status_code == 200, verified.text
    return email


async def visit(page: Any, url: str, ready: str = "main") -> None:
    """Load a page, wait for it to be ready, and check it before the next load resets the watch."""
    await page.goto(url)
    await page.locator(ready).first.wait_for()
    await no_problems(page)


async def sign_in_page(page: Any, live_server: str, email: str) -> None:
    page.on("dialog", lambda dialog: dialog.accept())  # "Delete this win?"
    await plugin.sign_in(page, live_server, email)


async def sign_out_page(page: Any) -> httpx.Headers:
    """Sign out through the menu; the answer's headers."""
    await page.get_by_label("Menu").click()  # Sign out is in the menu on every screen
    async with page.expect_response(lambda r: r.url.endswith("/logout")) as answer:
        await page.get_by_role("button", name="Sign out").locator("visible=true").click()
    await page.wait_for_url("**/login?signed_out=1")
    return httpx.Headers(await (await answer.value).all_headers())


async def test_row16_every_page_chart_and_swap_runs_under_the_csp_without_errors(
    page: Any, live_server: str, mailbox: Mailbox
):
    for path, ready in PUBLIC:
        await visit(page, f"{live_server}{path}", ready)
    await page.goto(f"{live_server}/login")
    await page.get_by_role("button", name="Dark").click()  # the theme switch
    await expect(page.locator("html")).to_have_class("dark")

    await sign_in_page(page, live_server, await new_account(live_server, mailbox, "csp"))
    await visit(page, f"{live_server}/entries")
    await quick_add(page, "Ran my first 10k", "Felt **strong**. #running")
    await quick_add(page, "Shipped the release", "On time. #work")
    entry = page.locator("article", has_text="Shipped the release")
    edit_url = await entry.get_by_role("link", name="Edit", exact=True).get_attribute("href")
    await entry.get_by_role("link", name="Edit", exact=True).click()  # edit in place
    form = page.locator("form[id^=entry-]")
    await form.get_by_label("Title").fill("Shipped the big release")
    await form.get_by_role("button", name="Save changes").click()
    await page.get_by_role("heading", name="Shipped the big release").wait_for()
    ran = page.locator("article", has_text="Ran my first 10k")
    await ran.get_by_role("link", name="Delete").click()
    await page.get_by_role("button", name="Delete").click()  # asked once, inline
    await page.get_by_role("button", name="Undo").click()
    await page.get_by_role("heading", name="Ran my first 10k").wait_for()
    await page.get_by_label("Search your wins").fill("ship")  # search as you type
    await expect(page.locator("#results article")).to_have_count(1)
    await page.locator("summary", has_text="Filters").click()
    async with page.expect_response(lambda r: "mood=5" in r.url):
        await page.locator("#fl-mood").select_option("5")
    await no_problems(page)

    assert edit_url and edit_url.endswith("/edit")
    detail = edit_url.removesuffix("/edit")
    for path in [detail, edit_url, "/entries/new", "/categories", "/review", "/settings"]:
        await visit(page, f"{live_server}{path}")
    await visit(page, f"{live_server}/export")
    await visit(page, f"{live_server}/export/print", "article")
    await page.goto(f"{live_server}/dashboard")
    for chart in CHARTS:  # the mood chart shows only with rated wins of the last 26 weeks
        await expect(page.locator(f"#{chart}")).to_have_attribute("data-drawn", "true")
    for canvas in await page.locator("canvas[data-chart], canvas[data-money-chart]").all():
        await expect(canvas).to_have_attribute("data-drawn", "true")
    await no_problems(page)


async def test_row18_after_sign_out_no_diary_text_stays_in_the_browser(
    page: Any, live_server: str, mailbox: Mailbox
):
    await sign_in_page(page, live_server, await new_account(live_server, mailbox, "residue"))
    await page.goto(f"{live_server}/entries")
    await quick_add(page, "Secret promotion talk", "Nobody knows yet. #career")
    await page.get_by_label("Search your wins").fill("promotion")
    await expect(page.locator("#results article")).to_have_count(1)
    await visit(page, f"{live_server}/dashboard")

    headers = await sign_out_page(page)

    assert headers["clear-site-data"] == CLEARED
    stored = await page.evaluate("JSON.stringify([localStorage, sessionStorage])")
    for text in ("Secret promotion", "Nobody knows", "career"):
        assert text not in stored, stored
    await page.get_by_text("You have signed out").wait_for()
    await no_problems(page)


async def test_row18_every_sign_out_answer_carries_clear_site_data(client, alice):
    await sign_in(client, "alice@example.com")
    form = await post_form(client, "/logout", {})
    await sign_in(client, "alice@example.com")
    htmx = await post_form(client, "/logout", {}, headers={"HX-Request": "true"})
    cookie_login = await client.post(
        "/api/v1/auth/cookie/login",
        data={"username": "alice@example.com", "password": PASSWORD},
        headers={"x-csrftoken": await csrf_token(client)},
    )
    assert cookie_login.status_code == 204
    cookie = await client.post(
        "/api/v1/auth/cookie/logout", headers={"x-csrftoken": await csrf_token(client)}
    )
    client.cookies.clear()  # an API client, no browser cookies
    token = await bearer_token(client, "alice@example.com")
    bearer = await client.post(
        "/api/v1/auth/bearer/logout", headers={"Authorization": f"Bearer {token}"}
    )
    for name, answer, status in [
        ("page", form, 303),
        ("htmx", htmx, 200),
        ("cookie", cookie, 204),
        ("bearer", bearer, 204),
    ]:
        assert answer.status_code == status, (name, answer.text)
        assert answer.headers["clear-site-data"] == CLEARED, name
    signed_in_page = await client.get("/login")
    assert "clear-site-data" not in signed_in_page.headers, "only sign-outs clear the site"
