"""The daily loop on a 390x844 phone in Chromium: tap targets of 44x44 px, "+ Win" one tap from
any page, a menu that closes on Escape, an outside tap and navigation, focus on what each swap
changed, Escape to cancel an edit, and no CSP report when a resized textarea is swapped.
Screenshots of each page at 390x844 and 1280x900 go to test-results/."""

from typing import Any

import httpx
from playwright.async_api import expect

from tests.browser.conftest import SHOTS
from tests.browser.test_diary_flow import phone, quick_add  # noqa: F401 (fixture: a signed-in phone)
from tests.browser.test_signup_flow import no_problems

SIZES = """sel => [...document.querySelectorAll(sel)]
  .filter(e => e.getClientRects().length && getComputedStyle(e).visibility !== 'hidden')
  .map(e => { const r = e.getBoundingClientRect();
              return [e.tagName + ' ' + (e.textContent || e.getAttribute('aria-label') || e.name || '').trim().slice(0, 30),
                      Math.round(r.width * 10) / 10, Math.round(r.height * 10) / 10]; })"""
CONTROLS = "a[href], button, summary, input:not([type=hidden]), select, textarea"
# Links inside running text are exempt (WCAG 2.5.8), as are skip links until focused.
INLINE = ".prose-entry a, .hint a, p > a.link, a.tag-link, .skip-link, .skip-days"
ACTIVE_ID = "document.activeElement && (document.activeElement.id || document.activeElement.closest('[id]').id)"


async def api_entries(page: Any, live_server: str, titles: list[str], **fields: Any) -> list[int]:
    """Entries written through the JSON API with the page's own session cookie."""
    cookies = {c["name"]: c["value"] for c in await page.context.cookies()}
    ids = []
    async with httpx.AsyncClient(base_url=live_server, cookies=cookies) as client:
        token = client.cookies.get("csrftoken") or ""
        for title in titles:
            response = await client.post(
                "/api/v1/entries",
                json={"title": title, **fields},
                headers={"x-csrftoken": token, "Origin": live_server},
            )
            assert response.status_code == 201, response.text
            ids.append(response.json()["id"])
    return ids


# The heatmap's days are a grid of 24 px squares (a year of 44 px ones would not be a map):
# at least 24x24, the floor for every target (WCAG 2.5.8), and never smaller.
GRID = ".heatmap a"


async def small_controls(page: Any) -> list[list[Any]]:
    sizes = await page.evaluate(SIZES, CONTROLS)
    inline = {tuple(s) for s in await page.evaluate(SIZES, INLINE)}
    grid = {tuple(s) for s in await page.evaluate(SIZES, GRID)}

    def too_small(size: list[Any]) -> bool:
        least = 24 if tuple(size) in grid else 44
        return tuple(size) not in inline and (size[1] < least or size[2] < least)

    return [s for s in sizes if too_small(s)]


async def test_every_control_is_at_least_44_px_on_a_phone(phone: Any, live_server: str):  # noqa: F811
    page = phone
    [entry_id] = await api_entries(
        page, live_server, ["Tagged win"], body="Went well #inline", tags=["sales", "q4"], mood=4
    )
    for path in ("/entries", f"/entries/{entry_id}", "/entries/new", "/categories", "/dashboard"):
        await page.goto(f"{live_server}{path}")
        if path == "/categories":
            await page.locator("details[data-menu] summary").nth(1).click()  # a row's menu
        else:
            await page.locator("header details[data-menu] summary").click()
        assert await small_controls(page) == [], path
    await page.goto(f"{live_server}/entries")
    card = page.locator(f"#entry-{entry_id}")
    edit = await card.get_by_role("link", name="Edit").bounding_box()
    delete = await card.get_by_role("link", name="Delete").bounding_box()
    assert delete["x"] - (edit["x"] + edit["width"]) >= 24, "Delete is well apart from Edit"
    for control in (
        card.get_by_role("link", name="#sales"),
        page.get_by_role("button", name="Dark"),
    ):
        box = await control.bounding_box()
        assert box["width"] >= 44 and box["height"] >= 44
    inline = await card.locator(".prose-entry a.tag-link").bounding_box()
    assert inline["height"] >= 10, "an inline #tag is a link in the text"
    await no_problems(page)


async def test_a_new_win_is_one_tap_away_and_search_is_above_the_composer(
    phone: Any,  # noqa: F811
    live_server: str,
):
    page = phone
    await page.goto(f"{live_server}/dashboard")
    await page.locator("nav[aria-label='Quick actions']").get_by_role("link", name="New win").tap()
    await page.wait_for_url(f"{live_server}/entries/new")
    await page.get_by_label("Title").fill("Written in one tap")
    await page.get_by_role("button", name="Save win").tap()
    await page.wait_for_url(f"{live_server}/entries")
    await page.get_by_role("heading", name="Written in one tap").wait_for()

    await page.goto(f"{live_server}/dashboard")
    await page.locator("nav[aria-label='Quick actions']").get_by_role("link", name="Search").tap()
    await page.wait_for_url(f"{live_server}/entries#q")
    search = page.get_by_label("Search your wins")
    await expect(search).to_be_focused()
    assert await search.evaluate(
        "e => { const r = e.getBoundingClientRect(); return r.top >= 0 && r.bottom <= innerHeight - 60 }"
    ), "the search field is in view, above the bottom bar"
    await no_problems(page)


async def test_the_menu_closes_on_escape_an_outside_tap_and_navigation(
    phone: Any,  # noqa: F811
    live_server: str,
):
    page = phone
    await page.goto(f"{live_server}/entries")
    menu = page.locator("header details[data-menu]")
    summary = menu.locator("summary")
    await summary.click()
    await expect(menu).to_have_attribute("open", "")
    await page.keyboard.press("Escape")
    await expect(menu).not_to_have_attribute("open", "")
    await expect(summary).to_be_focused()

    await summary.click()
    await page.locator("main h1").tap()
    await expect(menu).not_to_have_attribute("open", "")

    await summary.click()
    await menu.get_by_role("link", name="Export").tap()
    await page.wait_for_url(f"{live_server}/export")
    await expect(page.locator("header details[data-menu]")).not_to_have_attribute("open", "")
    await page.go_back()
    await page.wait_for_url(f"{live_server}/entries")
    await expect(page.locator("header details[data-menu]")).not_to_have_attribute("open", "")
    await no_problems(page)


async def test_focus_lands_on_what_each_swap_changed(phone: Any, live_server: str):  # noqa: F811
    page = phone
    await page.goto(f"{live_server}/entries")
    await quick_add(page, "Focus me", "First.")
    card = page.locator("article", has_text="Focus me")
    card_id = await card.get_attribute("id")
    await expect(card).to_be_focused()

    await card.get_by_role("link", name="Edit", exact=True).click()
    form = page.locator(f"form#{card_id}")
    await expect(form.get_by_label("Title")).to_be_focused()
    await form.get_by_label("Title").fill("Not saved")
    await page.keyboard.press("Escape")
    await expect(page.locator(f"article#{card_id}")).to_be_focused()
    assert (
        await page.locator(f"article#{card_id}").get_by_role("heading").inner_text() == "Focus me"
    )

    await page.locator(f"#{card_id}").get_by_role("link", name="Edit", exact=True).click()
    await form.get_by_label("Title").fill("Focus me again")
    await form.get_by_role("button", name="Save changes").click()
    await expect(page.locator(f"article#{card_id}")).to_be_focused()
    await expect(page.locator(f"#{card_id}").get_by_role("heading")).to_have_text("Focus me again")

    await page.locator(f"#{card_id}").get_by_role("link", name="Delete").click()
    await expect(page.locator(f"#{card_id}").get_by_role("link", name="Keep it")).to_be_focused()
    await page.locator(f"#{card_id}").get_by_role("button", name="Delete").click()
    notice = page.locator(f"#{card_id}.flash")
    await expect(notice).to_be_focused()
    await notice.get_by_role("button", name="Undo").click()
    await expect(page.locator(f"article#{card_id}")).to_be_focused()

    ids = await api_entries(page, live_server, [f"Older {n}" for n in range(21)], day="2026-01-01")
    await page.goto(f"{live_server}/entries")
    await page.get_by_role("link", name="Load more").click()
    first_loaded = page.locator("#entry-list article").nth(20)
    await expect(first_loaded).to_be_focused()
    assert await first_loaded.get_attribute("id") == f"entry-{ids[1]}"  # newest of the rest
    await no_problems(page)


async def test_the_undo_notice_goes_away_when_its_time_is_up(phone: Any, live_server: str):  # noqa: F811
    page = phone
    [entry_id] = await api_entries(page, live_server, ["Short-lived"])
    await page.goto(f"{live_server}/entries")
    await page.locator(f"#entry-{entry_id}").get_by_role("link", name="Delete").click()
    await page.locator(f"#entry-{entry_id}").get_by_role("button", name="Delete").click()
    notice = page.locator(f"#entry-{entry_id}.flash")
    await expect(notice).to_be_visible()
    await expect(notice).to_have_count(0, timeout=15_000)
    await expect(page.locator("#main")).to_be_focused()  # focus was in it: it moves on, not lost
    await no_problems(page)


async def test_a_swap_after_resizing_a_textarea_reports_no_csp_violation(
    phone: Any,  # noqa: F811
    live_server: str,
):
    page = phone
    violations: list[str] = []
    page.on("console", lambda m: "Content Security Policy" in m.text and violations.append(m.text))
    await page.goto(f"{live_server}/entries")
    await page.evaluate(
        "document.addEventListener('securitypolicyviolation', e => window.__problems.push("
        "'CSP ' + e.violatedDirective + ' ' + e.sample))"
    )
    form = page.locator("#quick-add")
    body = form.get_by_label("What happened")
    await body.fill("Kept when the form comes back")
    # What a user's drag on the resize handle does: the browser writes style="height: ...".
    await body.evaluate("e => { e.style.height = '240px'; }")
    assert "height" in (await body.get_attribute("style") or "")
    await form.get_by_label("Title").fill("   ")  # passes `required`, refused by the server
    await form.get_by_role("button", name="Save win").click()
    await page.locator("#quick-add [aria-invalid=true]").wait_for()
    await expect(page.locator("#quick-add").get_by_label("What happened")).to_have_value(
        "Kept when the form comes back"
    )
    await page.wait_for_timeout(300)  # htmx settles attributes 20 ms after the swap

    [entry_id] = await api_entries(page, live_server, ["Edit me"])
    await page.goto(f"{live_server}/entries")
    await page.evaluate(
        "document.addEventListener('securitypolicyviolation', e => window.__problems.push("
        "'CSP ' + e.violatedDirective + ' ' + e.sample))"
    )
    await page.locator(f"#entry-{entry_id}").get_by_role("link", name="Edit", exact=True).click()
    edit = page.locator(f"form#entry-{entry_id}")
    await edit.get_by_label("What happened").evaluate("e => { e.style.height = '300px'; }")
    await edit.get_by_label("Mood").select_option("3")
    await edit.get_by_label("Title").fill("   ")
    await edit.get_by_role("button", name="Save changes").click()
    await page.locator(f"form#entry-{entry_id} [aria-invalid=true]").wait_for()
    await page.wait_for_timeout(300)
    assert violations == []
    await no_problems(page)


PAGES = [
    ("home", "/"),
    ("entries", "/entries"),
    ("search", "/entries?q=window"),
    ("new", "/entries/new"),
    ("entry", "/entries/{id}"),
    ("edit", "/entries/{id}/edit"),
    ("delete", "/entries/{id}/delete"),
    ("categories", "/categories"),
    ("not-found", "/no-such-page"),
]


async def test_screenshots_of_each_page_on_a_phone_and_a_desktop(
    phone: Any,  # noqa: F811
    live_server: str,
    chromium: Any,
):
    page = phone
    [entry_id] = await api_entries(
        page, live_server, ["Window seat"], body="A **window** seat on the train #travel", mood=5
    )
    desktop = await chromium.new_context(
        viewport={"width": 1280, "height": 900}, storage_state=await page.context.storage_state()
    )
    try:
        wide = await desktop.new_page()
        wide.problems = []
        wide.on(
            "console",
            lambda m: m.type == "error" and "404" not in m.text and wide.problems.append(m.text),
        )
        SHOTS.mkdir(exist_ok=True)
        for name, path in PAGES:
            for size, tab in (("390x844", page), ("1280x900", wide)):
                await tab.goto(f"{live_server}{path.format(id=entry_id)}")
                await tab.screenshot(path=str(SHOTS / f"phone-{name}-{size}.png"), full_page=True)
                bar = tab.locator("nav[aria-label='Quick actions']")
                assert await bar.is_visible() == (tab is page), (name, size, "bar on phones only")
                assert await tab.evaluate("document.documentElement.scrollWidth <= innerWidth"), (
                    name,
                    size,
                    "nothing wider than the screen",
                )
        assert wide.problems == []
    finally:
        await desktop.close()
    page.problems = [p for p in page.problems if "404" not in p]
    await no_problems(page)
