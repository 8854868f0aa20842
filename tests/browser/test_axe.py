"""axe-core finds nothing on any page: signed out and in, light and dark, on a phone and a desktop.

Every rule axe runs by default counts, whatever its impact. The pages are visited as a person
would see them: the colour scheme comes from the browser (prefers-color-scheme, which the
account's default "system" theme follows), the signed-in diary has wins on several days with
categories, tags, moods and money. A full-page screenshot of each lands in test-results/pages/.
"""

import json
import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.browser.conftest import SHOTS
from tests.browser.plugin import sign_in
from tests.browser.test_signup_flow import wait_for_code
from tests.conftest import Mailbox
from tests.factories import PASSWORD

AXE = Path(__file__).parent / "vendor" / "axe.min.js"
PAGES = SHOTS / "pages"
SIZES = {
    "390x844": {
        "viewport": {"width": 390, "height": 844},
        "is_mobile": True,
        "has_touch": True,
    },
    "1280x900": {"viewport": {"width": 1280, "height": 900}},
}
THEMES = ("light", "dark")
RUN_AXE = """async () => {
  const result = await axe.run(document, {resultTypes: ["violations"]});
  return result.violations.map(v => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.map(n => ({
      target: n.target.join(" "),
      detail: [...n.any, ...n.all, ...n.none].map(c => c.message).filter(Boolean)[0] || "",
    })),
  }));
}"""
VISITOR_PAGES = [
    ("welcome", "/", 200),
    ("login", "/login", 200),
    ("register", "/register", 200),
    ("verify", "/verify?email=newcomer%40example.com", 200),
    ("forgot-password", "/forgot-password", 200),
    ("reset-password", "/reset-password?token=x", 200),
    ("404-visitor", "/no-such-page", 404),
]
# Pages another change may add (the development mailbox): checked wherever the server has them.
OPTIONAL_PAGES = [("dev-mail", "/dev/mail")]
# (what, day offset from today, category index or None, tags, mood, amount, currency)
WINS = [
    ("Shipped the release", 0, 0, ["work", "launch"], 5, None, None),
    ("Ran my first 10k", 0, 1, ["running"], 4, None, None),
    ("Sold the old bike", 1, None, ["money"], 4, "120.50", "EUR"),
    ("Read two chapters", 2, 2, ["reading"], 3, None, None),
    ("Fixed the flaky build", 5, 0, ["work"], 4, None, None),
    ("Cooked for friends", 12, None, [], 5, None, None),
    ("Got a raise", 40, 0, ["work", "money"], 5, "300", "USD"),
    ("Climbed the hill", 200, 1, ["outdoors"], 4, None, None),
]
BODY = (
    "Felt **strong** the whole way, and the *team* noticed.\n\n"
    "- planned the week\n- kept the evening free\n\n"
    "Next: [the plan](https://example.com/plan). #progress"
)


@dataclass
class Diary:
    email: str
    entry_id: int
    today: date


@dataclass
class Violation:
    page: str
    size: str
    theme: str
    rule: str
    impact: str
    help: str
    target: str
    detail: str


@pytest.fixture(scope="session")
async def diary(live_server: str, mailbox: Mailbox) -> Diary:
    """A verified account with a few weeks of wins, made through the API as a client would."""
    email = f"axe-{time.time_ns()}@example.com"
    async with httpx.AsyncClient(base_url=live_server, timeout=30) as api:
        response = await api.post(
            "/api/v1/auth/register", json={"email": email, "password": PASSWORD}
        )
        assert response.status_code == 202, response.text
        code = await wait_for_code(mailbox, email)
        response = await api.post("/api/v1/auth/verify", json={"email": email, "code": code})
        assert response.status_code == 200, response.text
        response = await api.post(
            "/api/v1/auth/bearer/login", data={"username": email, "password": PASSWORD}
        )
        api.headers["Authorization"] = f"Bearer {response.json()['access_token']}"
        have = {c["name"]: c["id"] for c in (await api.get("/api/v1/categories")).json()}
        categories = []
        for name, colour in [
            ("Work", "#2563eb"),
            ("Health", "#16a34a"),
            ("Side project", "#9333ea"),
        ]:
            if name not in have:  # a new account starts with a few categories of its own
                response = await api.post(
                    "/api/v1/categories", json={"name": name, "colour": colour}
                )
                assert response.status_code == 201, response.text
                have[name] = response.json()["id"]
            categories.append(have[name])
        today = date.today()
        ids = []
        for title, ago, category, tags, mood, amount, currency in WINS:
            response = await api.post(
                "/api/v1/entries",
                json={
                    "title": title,
                    "body": BODY,
                    "day": (today - timedelta(days=ago)).isoformat(),
                    "category_id": None if category is None else categories[category],
                    "tags": tags,
                    "mood": mood,
                    "amount": amount,
                    "currency": currency,
                },
            )
            assert response.status_code == 201, response.text
            ids.append(response.json()["id"])
    return Diary(email=email, entry_id=ids[0], today=today)


def member_pages(diary: Diary) -> list[tuple[str, str, int]]:
    entry, today = diary.entry_id, diary.today
    start = (today - timedelta(days=365)).isoformat()
    return [
        ("home", "/", 200),
        ("entries", "/entries", 200),
        ("entries-search", "/entries?q=strong", 200),
        ("entries-new", "/entries/new", 200),
        ("entry", f"/entries/{entry}", 200),
        ("entry-edit", f"/entries/{entry}/edit", 200),
        ("categories", "/categories", 200),
        ("dashboard", "/dashboard", 200),
        ("review-week", "/review?period=week", 200),
        ("review-month", "/review?period=month", 200),
        ("review-year", "/review?period=year", 200),
        ("settings", "/settings", 200),
        ("export", "/export", 200),
        ("export-print", f"/export/print?date_from={start}&date_to={today.isoformat()}", 200),
        ("404-member", "/no-such-page", 404),
        ("404-entry", "/entries/999999999", 404),
    ]


async def optional_pages(page: Any, base: str, who: str) -> list[tuple[str, str, int]]:
    """Those of OPTIONAL_PAGES this server has, asked with the browser's own cookies."""
    found = []
    for name, path in OPTIONAL_PAGES:
        response = await page.request.get(f"{base}{path}", max_redirects=0)
        if response.status == 200:
            found.append((f"{name}-{who}", path, 200))
    return found


async def settle(page: Any, name: str) -> None:
    """Wait for what paints after load: the dashboard's charts, the web fonts."""
    if name == "dashboard":
        for chart in await page.locator("canvas[id$=-chart]").all():
            await chart.wait_for(state="attached")
            await page.wait_for_function(
                "c => c.dataset.drawn === 'true'", arg=await chart.element_handle()
            )
    await page.evaluate("document.fonts.ready.then(() => true)")


async def audit(page: Any, name: str, size: str, theme: str) -> list[Violation]:
    if not await page.evaluate("typeof window.axe !== 'undefined'"):
        await page.evaluate(AXE.read_text() + "\n;true")  # not a <script>: the CSP stays on
    PAGES.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(PAGES / f"{name}-{size}-{theme}.png"), full_page=True)
    return [
        Violation(
            name, size, theme, v["id"], v["impact"] or "", v["help"], n["target"], n["detail"]
        )
        for v in await page.evaluate(RUN_AXE)
        for n in v["nodes"]
    ]


async def form_errors(page: Any, base: str, who: str, size: str, theme: str) -> list[Violation]:
    """A form that says what to fix, in place: sign-up with a weak password, or a settings form
    whose two new passwords differ."""
    if who == "visitor":
        await page.goto(f"{base}/register")
        await page.get_by_label("Email").fill("someone@example.com")
        await page.get_by_label("Password").fill("password1")
        await page.get_by_role("button", name="Create account").click()
        await page.locator("#f-password-error").wait_for()
        return await audit(page, "register-error", size, theme)
    await page.goto(f"{base}/settings")
    form = page.locator('form[action="/settings/password"]')
    await form.get_by_label("Current password").fill(PASSWORD)
    await form.get_by_label("New password", exact=True).fill("another horse battery staple")
    await form.get_by_label("New password again").fill("another horse battery stable")
    await form.get_by_role("button", name="Change password").click()
    await page.get_by_text("The two new passwords are not the same.").wait_for()
    return await audit(page, "settings-error", size, theme)


async def import_pages(page: Any, base: str, size: str, theme: str) -> list[Violation]:
    """The two import pages a form leads to: the preview of a jrnl file, then the import."""
    win = {"date": "2024-03-01", "title": f"Imported at {size} in {theme}", "body": "From jrnl."}
    await page.goto(f"{base}/export")
    await page.get_by_label("File").set_input_files(
        files=[
            {
                "name": "jrnl.json",
                "mimeType": "application/json",
                "buffer": json.dumps({"entries": [win]}).encode(),
            }
        ]
    )
    await page.get_by_role("button", name="Check the file").click()
    await page.get_by_role("heading", name="Ready to import").wait_for()
    violations = await audit(page, "import-preview", size, theme)
    await page.get_by_role("button", name="Import 1 entry", exact=True).click()
    await page.get_by_text("Done: 1 entry imported").wait_for()
    return violations + await audit(page, "importing", size, theme)


def table(violations: list[Violation]) -> str:
    rows = [("page", "size", "theme", "rule", "impact", "element", "what axe says")]
    for v in violations:
        rows.append((v.page, v.size, v.theme, v.rule, v.impact, v.target[:70], v.detail or v.help))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)) + "  " + row[-1]
             for row in rows]  # fmt: skip
    return f"{len(violations)} axe violations:\n" + "\n".join(lines)


@pytest.mark.parametrize("theme", THEMES)
@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("who", ["visitor", "member"])
async def test_axe_finds_no_violation_on_any_page(
    chromium: Any, live_server: str, diary: Diary, who: str, size: str, theme: str
):
    context = await chromium.new_context(**SIZES[size], color_scheme=theme)
    page = await context.new_page()
    try:
        if who == "member":
            await sign_in(page, live_server, diary.email)
            pages = member_pages(diary)
        else:
            pages = list(VISITOR_PAGES)
        pages += await optional_pages(page, live_server, who)
        violations: list[Violation] = []
        for name, path, status in pages:
            response = await page.goto(f"{live_server}{path}", wait_until="load")
            assert response is not None and response.status == status, (name, path)
            assert page.url == f"{live_server}{path}", f"{path} went to {page.url}"
            dark = "dark" in (await page.locator("html").get_attribute("class") or "")
            assert dark == (theme == "dark"), f"{name} is not in the {theme} theme"
            await settle(page, name)
            violations += await audit(page, name, size, theme)
            if name == "home":  # a member's menu (a visitor's header has no menu), open
                await page.locator("nav details > summary").click()
                await page.locator("nav details[open] a >> visible=true").first.wait_for()
                violations += await audit(page, f"{name}-menu", size, theme)
        violations += await form_errors(page, live_server, who, size, theme)
        if who == "member":
            violations += await import_pages(page, live_server, size, theme)
    finally:
        await context.close()
    assert not violations, table(violations)
