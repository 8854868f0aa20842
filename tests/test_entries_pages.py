"""The diary pages: alice works, anonymous is sent to sign in, bob gets 404; HTMX gets
fragments, a plain form gets a 303; markup typed into any field stays inert."""

import re

import httpx
import pytest
from sqlalchemy import func, select

from app.models import Category, Entry
from tests.factories import assert_inert, post_form

HTMX = {"HX-Request": "true"}
PAYLOAD = '<script>alert(1)</script><img src=x onerror=alert(1)>[x](javascript:alert(1))<b hx-get="/x" hx-trigger="load">'


async def add(client: httpx.AsyncClient, **fields: str) -> httpx.Response:
    return await post_form(client, "/entries", {"title": "A win", **fields})


async def entry_ids(session) -> list[int]:  # type: ignore[no-untyped-def]
    return list((await session.execute(select(Entry.id).order_by(Entry.id))).scalars())


def page_hx(html: str) -> set[tuple[str, str | None]]:
    """The hx-* attributes our own templates put on a page (never from user text)."""
    return set(
        re.findall(r'(hx-[\w-]+)="([^"]*)"', html) + re.findall(r"(hx-[\w-]+)='([^']*)'", html)
    )


async def test_quick_add_without_javascript_redirects_and_shows_the_entry(alice_client, session):
    response = await add(alice_client, body="Ran **5k** #run", mood="4")
    assert response.status_code == 303 and response.headers["location"] == "/entries"
    page = await alice_client.get("/entries")
    assert "Saved: A win" in page.text
    assert "<strong>5k</strong>" in page.text and "#run" in page.text
    assert "Today" in page.text


async def test_quick_add_with_htmx_returns_the_list_and_a_fresh_form(alice_client):
    response = await post_form(alice_client, "/entries", {"title": "Shipped it"}, headers=HTMX)
    assert response.status_code == 200
    assert "<html" not in response.text
    assert "Shipped it" in response.text
    assert 'id="quick-add"' in response.text and 'hx-swap-oob="true"' in response.text


async def test_quick_add_errors_come_back_inline(alice_client, session):
    response = await post_form(
        alice_client, "/entries", {"title": "", "mood": "9", "category_id": "424242"}, headers=HTMX
    )
    assert response.status_code == 422
    assert response.headers["hx-retarget"] == "#quick-add"
    assert "Give the win a title." in response.text
    assert "Choose a mood from 1 to 5." in response.text
    assert await entry_ids(session) == []
    plain = await post_form(alice_client, "/entries", {"title": "x" * 201})
    assert plain.status_code == 422 and "<html" in plain.text
    assert "Use at most 200 characters for the title" in plain.text


async def test_a_foreign_category_is_refused_in_the_form(alice_client, bob, session):
    bobs = (
        (await session.execute(select(Category.id).where(Category.user_id == bob.id)))
        .scalars()
        .first()
    )
    response = await add(alice_client, category_id=str(bobs))
    assert response.status_code == 422
    assert "Choose one of your categories." in response.text


async def test_detail_edit_and_update_work_with_and_without_htmx(alice_client, session):
    await add(alice_client, title="Before")
    [entry_id] = await entry_ids(session)
    assert "Before" in (await alice_client.get(f"/entries/{entry_id}")).text
    form = await alice_client.get(f"/entries/{entry_id}/edit", headers=HTMX)
    assert form.status_code == 200 and "<html" not in form.text and 'value="Before"' in form.text
    assert "<html" in (await alice_client.get(f"/entries/{entry_id}/edit")).text

    fragment = await post_form(
        alice_client,
        f"/entries/{entry_id}",
        {"title": "After", "body": "", "tags": ""},
        headers=HTMX,
    )
    assert (
        fragment.status_code == 200
        and f'id="entry-{entry_id}"' in fragment.text
        and "After" in fragment.text
    )
    plain = await post_form(alice_client, f"/entries/{entry_id}", {"title": "Again"})
    assert plain.status_code == 303 and plain.headers["location"] == f"/entries/{entry_id}"
    bad = await post_form(alice_client, f"/entries/{entry_id}", {"title": ""}, headers=HTMX)
    assert bad.status_code == 422 and "Give the win a title." in bad.text
    assert (await session.execute(select(Entry.title))).scalar_one() == "Again"


async def test_delete_then_undo_with_htmx(alice_client, session):
    await add(alice_client, title="Oops")
    [entry_id] = await entry_ids(session)
    deleted = await post_form(alice_client, f"/entries/{entry_id}/delete", {}, headers=HTMX)
    assert "Undo" in deleted.text and "data-autohide" in deleted.text
    assert "Oops" not in (await alice_client.get("/entries")).text.split('id="results"')[1]
    restored = await post_form(alice_client, f"/entries/{entry_id}/restore", {}, headers=HTMX)
    assert f'id="entry-{entry_id}"' in restored.text
    assert "Oops" in (await alice_client.get("/entries")).text


async def test_delete_without_javascript_offers_undo_in_the_flash(alice_client, session):
    await add(alice_client, title="Oops")
    [entry_id] = await entry_ids(session)
    response = await post_form(alice_client, f"/entries/{entry_id}/delete", {})
    assert response.status_code == 303
    page = await alice_client.get("/entries")
    assert f'action="/entries/{entry_id}/restore"' in page.text
    assert (await post_form(alice_client, f"/entries/{entry_id}/restore", {})).status_code == 303


async def test_bob_gets_404_on_every_entry_route_of_alice(alice_client, bob_client, session):
    await add(alice_client, title="Alice only")
    [entry_id] = await entry_ids(session)
    for method, path in [
        ("GET", f"/entries/{entry_id}"),
        ("GET", f"/entries/{entry_id}/edit"),
        ("POST", f"/entries/{entry_id}"),
        ("POST", f"/entries/{entry_id}/delete"),
        ("POST", f"/entries/{entry_id}/restore"),
    ]:
        if method == "GET":
            response = await bob_client.get(path, headers={"Accept": "text/html"})
        else:
            response = await post_form(bob_client, path, {"title": "hacked"})
        assert response.status_code == 404, (method, path)
    assert "Alice only" not in (await bob_client.get("/entries?q=alice")).text
    assert (await session.execute(select(Entry.title))).scalar_one() == "Alice only"


@pytest.mark.parametrize(
    "path", ["/entries", "/entries/new", "/entries/1", "/entries/1/edit", "/categories"]
)
async def test_pages_need_a_session(client, path):
    response = await client.get(path)
    assert response.status_code == 303 and response.headers["location"] == f"/login?next={path}"


async def test_search_and_filters_work_as_a_plain_get_and_as_htmx(alice_client):
    await add(alice_client, title="Marathon done", body="ran the whole marathon")
    await add(alice_client, title="Cooked dinner")
    plain = await alice_client.get("/entries", params={"q": "marathons"})
    results = plain.text.split('id="results"')[1]
    assert "<html" in plain.text and "<mark>Marathon</mark>" in results and "Cooked" not in results
    fragment = await alice_client.get(
        "/entries", params={"q": "marathon"}, headers={**HTMX, "HX-Target": "results"}
    )
    assert "<html" not in fragment.text and "Marathon" in fragment.text
    assert "No wins match." in (await alice_client.get("/entries", params={"q": "zebra"})).text


async def test_load_more_pages_with_a_link_and_an_htmx_fragment(alice_client):
    for i in range(25):
        await add(alice_client, title=f"win number {i}", day=f"2026-01-{i + 1:02d}")
    first = await alice_client.get("/entries")
    match = re.search(r'href="(/entries\?[^"]*cursor=[^"]+)"', first.text)
    assert match, "a plain link to the next page"
    url = match.group(1).replace("&amp;", "&")
    second = await alice_client.get(url)
    assert "win number 0<" in second.text and "win number 24<" not in second.text
    more = await alice_client.get(url, headers={**HTMX, "HX-Target": "load-more"})
    assert (
        "<html" not in more.text
        and "win number 0<" in more.text
        and 'id="results"' not in more.text
    )


async def test_markup_in_every_field_is_inert_in_pages_and_fragments(alice_client):
    await post_form(alice_client, "/categories", {"name": PAYLOAD[:50], "colour": "#123456"})
    response = await add(alice_client, title=PAYLOAD[:200], body=PAYLOAD, tags="ok")
    assert response.status_code == 303
    for html in [
        (await alice_client.get("/entries")).text,
        (await alice_client.get("/entries", params={"q": "alert"})).text,
        (await alice_client.get("/entries", headers={**HTMX, "HX-Target": "results"})).text,
        (await alice_client.get("/categories")).text,
    ]:
        assert_inert(html, allowed_hx=page_hx_allowed(html))
        assert "<script>alert" not in html and "<img src=x" not in html


def page_hx_allowed(html: str) -> set[tuple[str, str | None]]:
    """hx-* attributes that only our templates write: their values are our own URLs and words."""
    allowed = set()
    for name, value in page_hx(html):
        if name == "hx-get" and value == "/x":
            continue  # the payload's, which must not appear as a real attribute
        allowed.add((name, value.replace("&amp;", "&").replace("&#34;", '"')))
    return allowed


async def test_categories_page_creates_renames_merges_and_deletes(alice_client, session):
    assert (
        await post_form(alice_client, "/categories", {"name": "Sport", "colour": "#16a34a"})
    ).status_code == 303
    dup = await post_form(alice_client, "/categories", {"name": "sport"}, headers=HTMX)
    assert dup.status_code == 422 and "already have a category called sport" in dup.text
    ids = dict((await session.execute(select(Category.name, Category.id))).all())
    await add(alice_client, title="Swim", category_id=str(ids["Sport"]))
    renamed = await post_form(
        alice_client,
        f"/categories/{ids['Sport']}",
        {"name": "Sports", "colour": "#000000"},
        headers=HTMX,
    )
    assert "Sports" in renamed.text and "<html" not in renamed.text
    await post_form(
        alice_client,
        f"/categories/{ids['Sports' if 'Sports' in ids else 'Sport']}/merge",
        {"into": str(ids["Health"]), "confirmed": "yes"},
    )
    assert (await session.execute(select(Entry.category_id))).scalar_one() == ids["Health"]
    await post_form(alice_client, f"/categories/{ids['Health']}/delete", {})
    assert (await session.execute(select(Entry.category_id))).scalar_one() is None
    assert (await session.execute(select(func.count()).select_from(Entry))).scalar_one() == 1


async def test_bob_gets_404_on_alices_categories(alice_client, bob_client, alice, session):
    alices = (
        (await session.execute(select(Category.id).where(Category.user_id == alice.id)))
        .scalars()
        .first()
    )
    for path in [
        f"/categories/{alices}",
        f"/categories/{alices}/merge",
        f"/categories/{alices}/delete",
    ]:
        assert (await post_form(bob_client, path, {"name": "x", "into": "1"})).status_code == 404


async def test_preferences_are_saved_and_checked(alice_client, alice, session):
    ok = await post_form(
        alice_client,
        "/settings/preferences",
        {"timezone": "Asia/Tokyo", "week_start": "6", "theme": "dark", "base_currency": "JPY"},
    )
    assert ok.status_code == 303
    await session.refresh(alice)
    assert (alice.timezone, alice.week_start, alice.theme, alice.base_currency) == (
        "Asia/Tokyo",
        6,
        "dark",
        "JPY",
    )
    assert 'data-theme="dark"' in (await alice_client.get("/settings")).text
    bad = await post_form(
        alice_client,
        "/settings/preferences",
        {"timezone": "Nowhere/Land", "week_start": "6", "theme": "dark", "base_currency": "JPY"},
        headers=HTMX,
    )
    assert bad.status_code == 422 and "is not a time zone name" in bad.text


async def test_the_footer_theme_buttons_save_the_account_theme(alice_client, alice, session):
    response = await post_form(
        alice_client,
        "/settings/theme",
        {"theme": "light"},
        headers={"Referer": "http://testserver/entries"},
    )
    assert response.headers["location"] == "/entries"
    await session.refresh(alice)
    assert alice.theme == "light"
