"""The dashboard's money chart draws in Chromium (a non-empty canvas) beside its server-drawn
tables, with no console errors or CSP violations."""

from datetime import date, timedelta
from typing import Any

import httpx
from playwright.async_api import expect

from tests.browser.test_dashboard import PAINTED
from tests.browser.test_diary_flow import phone  # noqa: F401 (fixture: a signed-in phone)
from tests.browser.test_signup_flow import no_problems, shot


async def test_the_money_chart_draws_beside_its_tables(phone: Any, live_server: str):  # noqa: F811
    page = phone
    cookies = {c["name"]: c["value"] for c in await page.context.cookies()}
    today = date.today()
    wins = [(40, "120.50", "USD"), (10, "80", "USD"), (3, "5000", "XOF")]  # XOF: no rate
    async with httpx.AsyncClient(base_url=live_server, cookies=cookies) as client:
        token = client.cookies.get("csrftoken") or ""
        for back, amount, currency in wins:
            response = await client.post(
                "/api/v1/entries",
                json={
                    "title": f"earned {amount} {currency}",
                    "day": (today - timedelta(days=back)).isoformat(),
                    "amount": amount,
                    "currency": currency,
                },
                headers={"x-csrftoken": token, "Origin": live_server},
            )
            assert response.status_code == 201, response.text
    await page.goto(f"{live_server}/dashboard")
    money = page.locator("[data-money]")
    await expect(money.locator("[data-money-total]")).to_have_text("$200.50")
    await expect(money.locator("[data-money-unconverted]")).to_contain_text("5,000")
    await expect(page.locator("#money-chart")).to_have_attribute("data-drawn", "true")
    assert await page.evaluate(PAINTED, "money-chart") > 100
    await expect(money.locator("[data-money-months] tbody tr")).to_have_count(12)
    await shot(page, "dashboard-money")
    await no_problems(page)
