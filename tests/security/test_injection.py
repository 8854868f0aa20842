"""SECURITY.md row 17: script tags, event handlers, javascript: links and hx-* attributes in
every text field (titles, Markdown bodies, category names, tags, email) stay inert text in
pages, HTMX fragments, exports and mail."""

import json
from typing import Any

import httpx
from sqlalchemy import func, select

from app.models import Entry
from tests.conftest import Mailbox, settle
from tests.factories import (
    PASSWORD,
    _Elements,
    assert_inert,
    bearer_token,
    csrf_token,
    post_form,
    sign_in,
)

# Every attack names /pwned, so any hx-* attribute that carries it came from user text.
TITLE = "<script>alert(1)</script><img src=x onerror=alert(2)><b hx-get=/pwned hx-trigger=load>"
BODY = "\n\n".join(
    [
        "<script>alert(1)</script>",
        '<img src="x" onerror="alert(2)"> <svg onload=alert(3)>',
        '<a href="javascript:alert(4)">a raw link</a> [a Markdown link](javascript:alert(5))',
        "![an image](javascript:alert(6)) <div hx-post='/pwned' hx-trigger='load'>hx</div>",
        '<iframe src="javascript:alert(7)"></iframe> <form action="/pwned"><button>go</button>',
    ]
)
CATEGORY = "<img src=x onerror=alert(1) hx-get=/pwned>"
TAGS = ["<script>alert(1)</script>", 'hx-get="/pwned"']
EMAILS = [
    '"<script>alert(1)</script>"@example.com',
    "<img src=x onerror=alert(1)>@example.com",
    'a" hx-get="/x"@example.com',
]
# Valid addresses (the validator accepts them) that would break out of an unescaped attribute.
NASTY_VALID_EMAIL = "x'onfocus='alert`1`'autofocus='hx-get='/pwned@example.com"
HTML = {"Accept": "text/html"}


def page_hx(html: str) -> set[tuple[str, str | None]]:
    """The page's own hx-* attributes: all of them but any that aims at the attack's /pwned."""
    parser = _Elements()
    parser.feed(html)
    return {
        (name, value)
        for _, attrs in parser.found
        for name, value in attrs
        if name.startswith(("hx-", "data-hx-"))
        and not (value or "").strip("'\"").startswith("/pwned")
    }


def check(html: str, where: str) -> None:
    try:
        assert_inert(html, page_hx(html))
    except AssertionError as exc:
        raise AssertionError(f"{where}: {exc}") from exc


async def make_nasty_entry(client: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, Any]:
    category = await client.post("/api/v1/categories", json={"name": CATEGORY}, headers=headers)
    assert category.status_code == 201, category.text
    created = await client.post(
        "/api/v1/entries",
        json={"title": TITLE, "body": BODY, "category_id": category.json()["id"], "mood": 5},
        headers=headers,
    )
    assert created.status_code == 201, created.text
    entry: dict[str, Any] = created.json()
    assert entry["title"] == TITLE and entry["body"] == BODY, "stored as typed, shown as text"
    assert_inert(entry["body_html"], set())
    return entry


async def test_row17_markup_in_titles_bodies_and_category_names_is_inert_in_every_page(
    client, alice
):
    await sign_in(client, "alice@example.com")
    entry = await make_nasty_entry(client, {"x-csrftoken": await csrf_token(client)})
    day = entry["day"]
    pages = [
        "/",
        "/entries",
        "/entries?q=alert",
        f"/entries/{entry['id']}",
        f"/entries/{entry['id']}/edit",
        "/entries/new",
        "/categories",
        "/dashboard",
        "/review",
        f"/export/print?date_from={day}&date_to={day}",
    ]
    for path in pages:
        response = await client.get(path, headers=HTML)
        assert response.status_code == 200, path
        check(response.text, path)
    detail = (await client.get(f"/entries/{entry['id']}", headers=HTML)).text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in detail, "the title is shown, as text"


async def test_row17_markup_is_inert_in_htmx_fragments(client, alice):
    await sign_in(client, "alice@example.com")
    token = await csrf_token(client)
    htmx = {"HX-Request": "true", "x-csrftoken": token, **HTML}
    entry = await make_nasty_entry(client, {"x-csrftoken": token})
    url = f"/entries/{entry['id']}"
    fragments = {
        "quick-add": await post_form(
            client, "/entries", {"title": TITLE, "body": BODY}, headers=htmx
        ),
        "search": await client.get("/entries?q=alert", headers=htmx),
        "edit form": await client.get(f"{url}/edit", headers=htmx),
        "saved edit": await post_form(
            client, url, {"title": TITLE + " again", "body": BODY}, headers=htmx
        ),
        "bad tags": await post_form(
            client, "/entries", {"title": TITLE, "tags": " ".join(TAGS)}, headers=htmx
        ),
        "deleted": await post_form(client, f"{url}/delete", {}, headers=htmx),
        "restored": await post_form(client, f"{url}/restore", {}, headers=htmx),
    }
    for name, response in fragments.items():
        assert response.status_code in (200, 422), (name, response.status_code)
        check(response.text, name)
    assert fragments["bad tags"].status_code == 422
    assert "Tags may use letters, digits" in fragments["bad tags"].text


async def test_row17_markup_in_tags_is_refused_and_writes_nothing(client, alice, session):
    headers = {"Authorization": f"Bearer {await bearer_token(client, 'alice@example.com')}"}
    for tag in TAGS:
        response = await client.post(
            "/api/v1/entries", json={"title": "Tagged", "tags": [tag]}, headers=headers
        )
        assert response.status_code == 422, tag
        assert "Tags may use letters, digits, - and _ only" in response.json()["detail"][0]["msg"]
    assert (await session.execute(select(func.count()).select_from(Entry))).scalar_one() == 0


async def test_row17_exports_are_downloads_that_no_browser_renders(client, alice):
    headers = {"Authorization": f"Bearer {await bearer_token(client, 'alice@example.com')}"}
    await make_nasty_entry(client, headers)
    for fmt, media in [("json", "application/json"), ("markdown", "application/zip")]:
        response = await client.get(f"/api/v1/export?format={fmt}", headers=headers)
        assert response.headers["content-type"].startswith(media), fmt
        assert response.headers["content-disposition"].startswith("attachment"), fmt
        assert response.headers["x-content-type-options"] == "nosniff"
    csv = await client.get("/api/v1/export?format=csv", headers=headers)
    assert csv.headers["content-type"].startswith("text/csv")
    assert csv.headers["content-disposition"].startswith("attachment")
    document = json.loads((await client.get("/api/v1/export?format=json", headers=headers)).content)
    assert document["entries"][0]["title"] == TITLE, "the export keeps the text as data"


async def test_row17_markup_in_the_email_field_is_inert(client, app, mailbox):
    for email in EMAILS:
        page = await post_form(client, "/register", {"email": email, "password": PASSWORD})
        assert page.status_code == 422
        check(page.text, email)
        api = await client.post(
            "/api/v1/auth/register",
            json={"email": email, "password": PASSWORD},
            headers={"x-csrftoken": await csrf_token(client)},
        )
        assert api.status_code == 422
    verify = await client.get("/verify", params={"email": "<script>alert(1)</script>"})
    check(verify.text, "verify")
    await settle(app)
    assert mailbox.messages == []


async def test_row17_a_valid_but_nasty_email_is_inert_in_pages_and_mail(
    client, app, mailbox: Mailbox
):
    response = await post_form(
        client, "/register", {"email": NASTY_VALID_EMAIL, "password": PASSWORD}
    )
    assert response.status_code == 303
    verify = await client.get(response.headers["location"], headers=HTML)
    check(verify.text, "verify page")
    await settle(app)
    message = mailbox.last_to(NASTY_VALID_EMAIL)
    html = message.get_body(("html",))
    assert html is not None
    check(html.get_content(), "mail")
    login = await client.get("/login", params={"email": NASTY_VALID_EMAIL}, headers=HTML)
    check(login.text, "login page")
