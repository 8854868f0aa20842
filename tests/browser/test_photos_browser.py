"""Photos on a 390x844 phone in Chromium: add one from the entry page (photos.js uploads it
with progress through the API), see its thumbnail in the list, move and remove photos, all
with 0 CSP violations; and the plain form with JavaScript off."""

from typing import Any

from playwright.async_api import expect

from tests.browser.test_diary_flow import phone  # noqa: F401 (fixture: a signed-in phone)
from tests.browser.test_phone import api_entries, small_controls
from tests.browser.test_signup_flow import no_problems, shot
from tests.photos_support import jpeg, png

LOADED = "img => img.complete && img.naturalWidth > 0"


async def test_a_photo_added_on_a_phone_shows_as_a_thumbnail_without_csp_problems(
    phone: Any,  # noqa: F811
    live_server: str,
):
    page = phone
    [entry_id] = await api_entries(page, live_server, ["Finished the half marathon"])
    await page.goto(f"{live_server}/entries/{entry_id}")
    await page.get_by_label("Add photos").set_input_files(
        [
            {"name": "finish.jpg", "mimeType": "image/jpeg", "buffer": jpeg(1200, 900)},
            {"name": "medal.png", "mimeType": "image/png", "buffer": png(300, 400)},
        ]
    )
    await page.get_by_role("button", name="Upload").click()
    await page.wait_for_url(f"**/entries/{entry_id}#photos")
    photos = page.locator("#photos li[data-photo] img")
    await expect(photos).to_have_count(2)
    assert await photos.first.get_attribute("alt") == "Finished the half marathon"
    assert await photos.first.evaluate(LOADED)
    assert await small_controls(page) == []
    await shot(page, "photos-entry")
    # Move the second one first, through the API (photos.js), then remove it.
    second = await page.locator("#photos li[data-photo]").nth(1).get_attribute("data-photo")
    await page.get_by_role("button", name="Move earlier").click()
    await expect(page.locator("#photos li[data-photo]").first).to_have_attribute(
        "data-photo", second or ""
    )
    await page.locator("#photos li[data-photo]").first.get_by_role("button", name="Remove").click()
    await expect(page.locator("#photos li[data-photo]")).to_have_count(1)
    await page.goto(f"{live_server}/entries")
    thumb = page.locator(f"#entry-{entry_id} img[loading=lazy]")
    await expect(thumb).to_have_count(1)
    await thumb.scroll_into_view_if_needed()
    await expect(thumb).to_have_attribute("width", "96")
    await page.wait_for_function(
        "sel => { const i = document.querySelector(sel); return i && i.complete && i.naturalWidth > 0 }",
        arg=f"#entry-{entry_id} img[loading=lazy]",
    )
    assert "-thumb.webp" in (await thumb.get_attribute("src") or "")
    await shot(page, "photos-list")
    await no_problems(page)


async def test_the_plain_photo_form_works_with_javascript_off(
    chromium: Any,
    phone: Any,  # noqa: F811
    live_server: str,
):
    [entry_id] = await api_entries(phone, live_server, ["Whiteboard of the plan"])
    cookies = await phone.context.cookies()
    context = await chromium.new_context(
        java_script_enabled=False, viewport={"width": 390, "height": 844}
    )
    await context.add_cookies(cookies)
    page = await context.new_page()
    await page.goto(f"{live_server}/entries/{entry_id}")
    await page.get_by_label("Add photos").set_input_files(
        [{"name": "board.webp", "mimeType": "image/jpeg", "buffer": jpeg(400, 300)}]
    )
    await page.get_by_role("button", name="Upload").click()
    await page.wait_for_url(f"**/entries/{entry_id}*")
    await expect(page.locator("#photos li[data-photo] img")).to_have_count(1)
    await expect(page.get_by_text("Added 1 photo.")).to_be_visible()
    await context.close()
