"""The insight pages in Chromium on a 390x844 phone: the heatmap opens on the newest week and
scrolls by keyboard, its days are 24 px tap targets, chart axes read as dates, mood points sit
inside the chart, no CSP violation; without JavaScript the tables carry the figures. Screenshots
at 390x844 and 1280x900 go to test-results/."""

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from playwright.async_api import expect

from tests.browser.conftest import SHOTS
from tests.browser.test_diary_flow import phone  # noqa: F401 (fixture: a signed-in phone)
from tests.browser.test_signup_flow import WATCH, no_problems

DAY_OR_WEEK = re.compile(r"^\d{1,2} [A-Z][a-z]{2}( \d{4})?$")  # "12 Nov", "12 Nov 2025"
MONTH = re.compile(r"^[A-Z][a-z]{2} \d{4}$")  # "Nov 2026"
TICKS = "id => { const c = Chart.getChart(document.getElementById(id));"
TICKS += " return c.scales.x.ticks.map(t => c.scales.x.getLabelForValue(t.value)); }"
INSIDE = """() => {
  const c = Chart.getChart(document.getElementById('mood-chart'));
  const a = c.chartArea, y = c.options.scales.y;
  const points = c.getDatasetMeta(0).data.map(p => ({x: p.x, y: p.y, r: p.options.radius}));
  return {min: y.min, max: y.max, clip: c.data.datasets[0].clip, values: c.data.datasets[0].data,
          outside: points.filter(p => p.x - p.r < a.left || p.x + p.r > a.right
                                   || p.y - p.r < a.top || p.y + p.r > a.bottom).length};
}"""
IN_VIEW = """el => {
  const r = el.getBoundingClientRect(), s = el.closest('.heat-scroll').getBoundingClientRect();
  return {left: r.left, right: r.right, width: r.width, height: r.height,
          inside: r.left >= s.left && r.right <= s.right && r.right <= window.innerWidth};
}"""


async def seed(page: Any, live_server: str) -> None:
    """A win every third day of the last 200, today's included, with moods of 1 and 5."""
    today = datetime.now(UTC).date()
    cookies = {c["name"]: c["value"] for c in await page.context.cookies()}
    async with httpx.AsyncClient(base_url=live_server, cookies=cookies) as client:
        headers = {"x-csrftoken": client.cookies.get("csrftoken") or "", "Origin": live_server}
        for i in range(0, 200, 3):
            day = today - timedelta(days=i)
            mood = 5 if day.isocalendar().week % 2 else 1  # weeks averaging 1 and 5: the edges
            body = {"title": f"win {i}", "day": str(day), "mood": mood}
            response = await client.post("/api/v1/entries", json=body, headers=headers)
            assert response.status_code == 201, response.text


async def shots(chromium: Any, page: Any, live_server: str, name: str, path: str) -> None:
    """The page at 390x844 (this phone) and at 1280x900 (a desktop with the same session)."""
    SHOTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(SHOTS / f"{name}-390x844.png"), full_page=True)
    desktop = await chromium.new_context(
        viewport={"width": 1280, "height": 900}, storage_state=await page.context.storage_state()
    )
    await desktop.add_init_script(WATCH)
    wide = await desktop.new_page()
    wide.problems = []
    wide.on("pageerror", lambda e: wide.problems.append(str(e)))
    await wide.goto(f"{live_server}{path}")
    for canvas in await wide.locator("canvas[data-chart]").all():
        await expect(canvas).to_have_attribute("data-drawn", "true")
    await wide.screenshot(path=str(SHOTS / f"{name}-1280x900.png"), full_page=True)
    await no_problems(wide)
    await desktop.close()


async def test_the_heatmap_opens_on_the_newest_week_and_scrolls_by_keyboard(
    phone: Any,  # noqa: F811
    live_server: str,
):
    page = phone
    await seed(page, live_server)
    await page.goto(f"{live_server}/dashboard")
    today = datetime.now(UTC).date()
    newest = page.locator(f'.heatmap a[href="/entries?date_from={today}&date_to={today}"]')
    box = await newest.evaluate(IN_VIEW)
    assert box["inside"], f"today's square is in view without scrolling: {box}"
    assert box["width"] >= 24 and box["height"] >= 24, box

    region = page.get_by_role("region", name=re.compile("Wins per day in"))
    await page.get_by_role("link", name=re.compile("Skip the days")).focus()
    await page.keyboard.press("Tab")
    await expect(region).to_be_focused()
    before = await region.evaluate("el => el.scrollLeft")
    for _ in range(5):
        await page.keyboard.press("ArrowLeft")
    # Chromium animates a keyboard scroll: wait for it (5 s at most) rather than read it at once.
    handle = await region.element_handle()
    await page.wait_for_function(
        "([el, before]) => el.scrollLeft < before", arg=[handle, before], timeout=5000
    )  # the arrow keys scroll it

    await newest.click()
    await page.wait_for_url(f"**/entries?date_from={today}&date_to={today}")
    await expect(page.get_by_role("heading", name="win 0")).to_be_visible()
    await no_problems(page)


async def test_charts_show_dates_keep_mood_points_inside_and_obey_the_csp(
    phone: Any,  # noqa: F811
    live_server: str,
    chromium: Any,
):
    page = phone
    await seed(page, live_server)
    await page.goto(f"{live_server}/dashboard")
    for chart in ("timeline-chart", "categories-chart", "mood-chart"):
        await expect(page.locator(f"#{chart}")).to_have_attribute("data-drawn", "true")
    weeks = await page.evaluate(TICKS, "timeline-chart")
    assert weeks and all(DAY_OR_WEEK.match(t) for t in weeks), weeks
    mood = await page.evaluate(INSIDE)
    assert (mood["min"], mood["max"], mood["clip"]) == (0.5, 5.5, False), mood
    assert 1 in mood["values"] and 5 in mood["values"] and mood["outside"] == 0, mood
    assert await page.locator("details.chart-table[open]").count() == 0, "tables fold away"
    await shots(chromium, page, live_server, "insights-dashboard", "/dashboard")

    await page.get_by_role("link", name="1 year").click()
    await page.wait_for_url("**/dashboard?range=1y#timeline")
    await page.get_by_role("link", name="Months", exact=True).click()
    await page.wait_for_url("**/dashboard?range=1y&by=month#timeline")
    await expect(page.locator("#timeline-chart")).to_have_attribute("data-drawn", "true")
    months = await page.evaluate(TICKS, "timeline-chart")
    assert len(months) >= 3 and all(MONTH.match(t) for t in months), months

    await page.goto(f"{live_server}/review?period=year")
    await expect(page.locator("details.review-month").first).to_be_visible()
    await shots(chromium, page, live_server, "insights-review", "/review?period=year")
    await no_problems(page)


async def test_without_javascript_the_tables_show_and_the_heatmap_still_opens_at_today(
    phone: Any,  # noqa: F811
    live_server: str,
    chromium: Any,
):
    await seed(phone, live_server)
    context = await chromium.new_context(
        viewport={"width": 390, "height": 844},
        is_mobile=True,
        java_script_enabled=False,
        storage_state=await phone.context.storage_state(),
    )
    page = await context.new_page()
    await page.goto(f"{live_server}/dashboard?range=6m")
    await expect(page.locator("#timeline-chart")).to_be_hidden()
    table = page.locator("[data-table-for=timeline-chart]")
    await expect(table).to_be_visible()
    assert await table.locator("tbody tr").count() > 20, "a row per week of six months"
    today = datetime.now(UTC).date()
    newest = page.locator(f'.heatmap a[href="/entries?date_from={today}&date_to={today}"]')
    assert (await newest.evaluate(IN_VIEW))["inside"]
    await page.screenshot(path=str(SHOTS / "insights-dashboard-nojs-390x844.png"), full_page=True)
    await context.close()
