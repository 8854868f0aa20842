"""The dashboard's charts draw in Chromium (non-empty canvases) with no console errors or CSP
violations, in light and dark mode."""

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from playwright.async_api import expect

from tests.browser.test_diary_flow import phone  # noqa: F401 (fixture: a signed-in phone)
from tests.browser.test_signup_flow import no_problems, shot

PAINTED = """id => {
  const c = document.getElementById(id);
  const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let painted = 0;
  for (let i = 3; i < data.length; i += 4) if (data[i] > 0) painted++;
  return painted;
}"""


async def test_the_dashboard_charts_draw(phone: Any, live_server: str):  # noqa: F811
    page = phone
    cookies = {c["name"]: c["value"] for c in await page.context.cookies()}
    async with httpx.AsyncClient(base_url=live_server, cookies=cookies) as client:
        token = client.cookies.get("csrftoken") or ""
        today = datetime.now(UTC).date()  # within the mood chart's 26 weeks
        for i, back in enumerate([0, 1, 8, 29]):
            day = str(today - timedelta(days=back))
            response = await client.post(
                "/api/v1/entries",
                json={"title": f"win {i}", "day": day, "mood": 3 + i % 3},
                headers={"x-csrftoken": token, "Origin": live_server},
            )
            assert response.status_code == 201, response.text
    await page.goto(f"{live_server}/dashboard")
    for chart in ("timeline-chart", "categories-chart", "mood-chart"):
        await expect(page.locator(f"#{chart}")).to_have_attribute("data-drawn", "true")
    await page.get_by_role("link", name="Months", exact=True).click()  # a link: works without JS
    await page.wait_for_url(f"{live_server}/dashboard?by=month#timeline")
    await expect(page.locator("#timeline-chart")).to_have_attribute("data-drawn", "true")
    await expect(page.locator("[data-table-for=timeline-chart] tbody tr")).not_to_have_count(0)
    for chart in ("timeline-chart", "categories-chart"):
        assert await page.evaluate(PAINTED, chart) > 100, chart
    await shot(page, "dashboard")
    await page.get_by_role("button", name="Dark").click()
    await page.wait_for_url(f"{live_server}/dashboard?by=month*")  # back where it was
    await expect(page.locator("html")).to_have_class("dark")
    await expect(page.locator("#mood-chart")).to_have_attribute("data-drawn", "true")
    await shot(page, "dashboard-dark")
    await no_problems(page)
