"""SECURITY.md row 7 (IDOR): bob on alice's ids, through pages, HTMX fragments, the API, import
and export, gets 404 (never 403: an id of someone else's looks like no id at all), and every
row of alice's is unchanged afterwards."""

from datetime import date
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from app.models import Category, Entry, EntryTag, User
from app.schemas import EntryCreate
from app.services import categories, entries
from tests.factories import bearer_token, csrf_token, post_form, sign_in
from tests.test_export_import import count, export, seed

NO_SUCH_ID = 2_000_000_000


async def alices_rows(app: FastAPI, alice: User) -> list[dict[str, Any]]:
    """Every entry, tag and category of alice's, read fresh from the database."""
    async with app.state.sessionmaker() as s:
        rows: list[dict[str, Any]] = []
        for model in (Entry, EntryTag, Category):
            found = await s.execute(select(model).where(model.user_id == alice.id))
            rows += sorted(
                (r.model_dump() for r in found.scalars()), key=lambda r: str(sorted(r.items()))
            )
        return rows


async def alices_things(session: Any, alice: User) -> tuple[int, int, int]:
    """Alice's live entry, a deleted one still in its undo window, and one of her categories."""
    work = next(
        r.category.id
        for r in await categories.list_categories(session=session, user=alice)
        if r.category.name == "Work"
    )
    live = await entries.create_entry(
        session=session,
        user=alice,
        data=EntryCreate(
            day=date(2026, 3, 1), title="Alice's secret win", body="#private", category_id=work
        ),
    )
    gone = await entries.create_entry(
        session=session, user=alice, data=EntryCreate(day=date(2026, 3, 2), title="Undo me")
    )
    await entries.delete_entry(session=session, user=alice, entry=gone)
    await session.commit()
    assert live.id is not None and gone.id is not None and work is not None
    return live.id, gone.id, work


def page_requests(entry: int, deleted: int, category: int) -> list[tuple[str, str, dict[str, str]]]:
    return [
        ("GET", f"/entries/{entry}", {}),
        ("GET", f"/entries/{entry}/edit", {}),
        ("POST", f"/entries/{entry}", {"title": "bob was here", "body": "x"}),
        ("POST", f"/entries/{entry}/delete", {}),
        ("POST", f"/entries/{deleted}/restore", {}),
        ("POST", f"/categories/{category}", {"name": "Bob's now", "colour": "#000000"}),
        ("POST", f"/categories/{category}/merge", {"into": str(category)}),
        ("POST", f"/categories/{category}/delete", {}),
    ]


def api_requests(entry: int, deleted: int, category: int) -> list[tuple[str, str, Any]]:
    return [
        ("GET", f"/api/v1/entries/{entry}", None),
        ("PATCH", f"/api/v1/entries/{entry}", {"title": "bob was here"}),
        ("DELETE", f"/api/v1/entries/{entry}", None),
        ("GET", f"/api/v1/entries/{deleted}", None),
        ("PATCH", f"/api/v1/categories/{category}", {"name": "Bob's now"}),
        ("PATCH", f"/api/v1/categories/{category}", {"merge_into": category}),
        ("DELETE", f"/api/v1/categories/{category}", None),
    ]


@pytest.mark.parametrize("htmx", [False, True], ids=["page", "fragment"])
async def test_row7_bob_gets_404_on_alices_ids_through_pages_and_fragments(
    app, client, session, alice, bob, htmx
):
    ids = await alices_things(session, alice)
    before = await alices_rows(app, alice)
    await sign_in(client, "bob@example.com")
    token = await csrf_token(client)
    headers = {"HX-Request": "true", "x-csrftoken": token} if htmx else {}
    for method, url, form in page_requests(*ids):
        if method == "GET":
            response = await client.get(url, headers={"Accept": "text/html", **headers})
        else:
            response = await post_form(
                client, url, form, headers={"Accept": "text/html", **headers}
            )
        assert response.status_code == 404, (method, url, response.status_code)
        assert "Alice's secret win" not in response.text
    assert await alices_rows(app, alice) == before


@pytest.mark.parametrize("auth", ["bearer", "cookie"])
async def test_row7_bob_gets_404_on_alices_ids_through_the_api(
    app, client, session, alice, bob, auth
):
    ids = await alices_things(session, alice)
    before = await alices_rows(app, alice)
    if auth == "bearer":
        headers = {"Authorization": f"Bearer {await bearer_token(client, 'bob@example.com')}"}
    else:
        await sign_in(client, "bob@example.com")
        headers = {"x-csrftoken": await csrf_token(client)}
    for method, url, body in api_requests(*ids):
        response = await client.request(method, url, json=body, headers=headers)
        assert response.status_code == 404, (method, url, response.text)
        assert "Alice" not in response.text
    assert await alices_rows(app, alice) == before


async def test_row7_alices_category_is_refused_to_bob_as_if_it_did_not_exist(
    app, client, session, alice, bob
):
    _, _, alices = await alices_things(session, alice)
    before = await alices_rows(app, alice)
    headers = {"Authorization": f"Bearer {await bearer_token(client, 'bob@example.com')}"}
    bobs = (await client.get("/api/v1/categories", headers=headers)).json()[0]["id"]
    answers = {}
    for target in (alices, NO_SUCH_ID):
        create = await client.post(
            "/api/v1/entries", json={"title": "mine", "category_id": target}, headers=headers
        )
        merge = await client.patch(
            f"/api/v1/categories/{bobs}", json={"merge_into": target}, headers=headers
        )
        listed = await client.get(f"/api/v1/entries?category_id={target}", headers=headers)
        answers[target] = [(r.status_code, r.json()) for r in (create, merge, listed)]
    assert answers[alices] == answers[NO_SUCH_ID]
    assert [status for status, _ in answers[alices]] == [422, 422, 200]
    assert answers[alices][2][1]["items"] == []
    assert await alices_rows(app, alice) == before


async def test_row7_exports_and_print_view_hold_only_the_callers_data(
    app, client, session, alice, bob
):
    await alices_things(session, alice)
    headers = {"Authorization": f"Bearer {await bearer_token(client, 'bob@example.com')}"}
    for fmt in ("json", "markdown", "csv"):
        content = await export(client, headers, fmt)
        assert b"secret win" not in content and b"private" not in content, fmt
    await sign_in(client, "bob@example.com")
    page = await client.get("/export/print?date_from=2026-01-01&date_to=2026-12-31")
    assert page.status_code == 200 and "secret win" not in page.text


async def test_row7_bob_cannot_import_alices_pending_upload(client, app, session, alice, bob):
    await seed(session, alice)
    await sign_in(client, "alice@example.com")
    file = await export(client, {})
    preview = await client.post(
        "/import/preview",
        data={"csrftoken": client.cookies["csrftoken"]},
        files={"file": ("a.json", file)},
        headers={"Origin": "http://testserver"},
    )
    pending = preview.text.split('name="token" value="')[1].split('"')[0]
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as other:
        await sign_in(other, "bob@example.com")
        stolen = await post_form(other, "/import", {"token": pending}, follow_redirects=True)
        unknown = await post_form(
            other, "/import", {"token": "no-such-upload"}, follow_redirects=True
        )
    assert "This import has expired" in stolen.text, "the same answer as for an unknown upload"
    assert "This import has expired" in unknown.text
    assert await count(session) == 2, "nothing was imported into bob's diary"


@pytest.mark.parametrize("huge", [3_000_000_000, 25154158937418873438208])
async def test_row7_an_id_past_the_integer_column_is_a_404_on_pages(app, client, alice, huge):
    """Such an id names nobody's row: a 404 like any other, not a database error (a 500)."""
    await sign_in(client, "alice@example.com")
    for method, url, form in page_requests(huge, huge, huge):
        if method == "GET":
            response = await client.get(url, headers={"Accept": "text/html"})
        else:
            response = await post_form(client, url, form, headers={"Accept": "text/html"})
        assert response.status_code == 404, (method, url, response.status_code)
    listed = await client.get(f"/entries?category_id={huge}", headers={"Accept": "text/html"})
    assert listed.status_code == 200
