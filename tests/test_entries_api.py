"""The entries, categories and preferences JSON API, for alice, bob and anonymous callers."""

from datetime import date, timedelta

import httpx
import pytest
import time_machine
from sqlalchemy import func, select

from app.models import Entry, EntryTag
from tests.factories import assert_inert

XSS = [
    "<script>alert(1)</script>",
    '<img src=x onerror="alert(1)">',
    "[click](javascript:alert(1))",
    '<a hx-get="/api/v1/users/me" hx-trigger="load">x</a>',
]


async def add(client: httpx.AsyncClient, **fields) -> dict:  # type: ignore[no-untyped-def]
    response = await client.post("/api/v1/entries", json={"title": "A win", **fields})
    assert response.status_code == 201, response.text
    return response.json()


async def category_id(client: httpx.AsyncClient, name: str) -> int:
    categories = (await client.get("/api/v1/categories")).json()
    return next(c["id"] for c in categories if c["name"] == name)


async def test_an_entry_is_created_with_every_field(as_alice):
    work = await category_id(as_alice, "Work")
    entry = await add(
        as_alice,
        day="2026-03-01",
        title="Closed the deal",
        body="The **call** went well #sales #Deal",
        category_id=work,
        mood=5,
        tags=["q1", "#big-win"],
        amount="1250.50",
        currency="eur",
    )
    assert entry["day"] == "2026-03-01"
    assert entry["body_html"] == "<p>The <strong>call</strong> went well #sales #Deal</p>\n"
    assert entry["category"]["name"] == "Work"
    assert entry["tags"] == ["q1", "big-win", "sales", "deal"]
    assert (entry["amount"], entry["currency"]) == ("1250.50", "EUR")
    assert (await as_alice.get(f"/api/v1/entries/{entry['id']}")).json() == entry


async def test_the_day_defaults_to_today_in_the_users_time_zone(as_alice):
    await as_alice.patch("/api/v1/users/me/preferences", json={"timezone": "Pacific/Auckland"})
    with time_machine.travel("2026-06-30 20:00:00+00:00", tick=False):  # 08:00 on 1 July there
        entry = await add(as_alice)
    assert entry["day"] == "2026-07-01"


async def test_amounts_use_the_base_currency_and_its_decimal_places(as_alice):
    await as_alice.patch("/api/v1/users/me/preferences", json={"base_currency": "JPY"})
    assert (await add(as_alice, amount="1500"))["currency"] == "JPY"
    response = await as_alice.post(
        "/api/v1/entries", json={"title": "x", "amount": "1.5", "currency": "JPY"}
    )
    assert response.status_code == 422
    assert "Use at most 0 decimal places for JPY." in response.text


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"title": ""}, "Give the win a title."),
        ({"title": "x" * 201}, "Use at most 200 characters for the title"),
        ({"body": "x" * 100_001}, "Use at most 100,000 characters"),
        ({"body": "nul \x00 byte"}, "NUL"),
        ({"title": "nul \x00"}, "NUL"),
        ({"tags": [f"t{i}" for i in range(21)]}, "Use at most 20 tags"),
        ({"tags": ["x" * 51]}, "at most 50 characters"),
        ({"tags": ["no spaces!"]}, "letters, digits, - and _ only"),
        ({"mood": 6}, "less than or equal to 5"),
        ({"category_id": 999999}, "Choose one of your categories."),
        ({"currency": "ABC", "amount": "1"}, "is not an ISO 4217 currency code"),
        ({"day": "1800-01-01"}, "between 1900 and 2999"),
    ],
)
async def test_bad_input_gets_a_clear_message_and_writes_nothing(
    as_alice, session, fields, message
):
    response = await as_alice.post("/api/v1/entries", json={"title": "A win", **fields})
    assert response.status_code == 422
    assert message in response.text
    assert (await session.execute(select(func.count()).select_from(Entry))).scalar_one() == 0


async def test_bob_cannot_see_change_or_delete_alices_entries(as_alice, as_bob):
    entry = await add(as_alice, title="Alice's secret win")
    url = f"/api/v1/entries/{entry['id']}"
    assert (await as_bob.get(url)).status_code == 404
    assert (await as_bob.patch(url, json={"title": "hacked"})).status_code == 404
    assert (await as_bob.delete(url)).status_code == 404
    assert (await as_bob.get("/api/v1/entries")).json()["items"] == []
    assert (await as_bob.get("/api/v1/entries", params={"q": "secret"})).json()["items"] == []
    assert (await as_alice.get(url)).json()["title"] == "Alice's secret win"


async def test_bob_cannot_file_an_entry_under_alices_category(as_alice, as_bob):
    alices = await category_id(as_alice, "Work")
    response = await as_bob.post("/api/v1/entries", json={"title": "x", "category_id": alices})
    assert response.status_code == 422


async def test_anonymous_callers_get_401(client):
    for method, url in [
        ("GET", "/api/v1/entries"),
        ("POST", "/api/v1/entries"),
        ("GET", "/api/v1/entries/1"),
        ("GET", "/api/v1/categories"),
        ("GET", "/api/v1/users/me/preferences"),
    ]:
        assert (await client.request(method, url, json={})).status_code == 401


async def test_patch_changes_only_what_is_sent(as_alice):
    entry = await add(as_alice, body="first #one", mood=3, amount="5.00", currency="USD")
    changed = (
        await as_alice.patch(f"/api/v1/entries/{entry['id']}", json={"mood": None, "title": "New"})
    ).json()
    assert (changed["title"], changed["mood"], changed["body"], changed["amount"]) == (
        "New",
        None,
        "first #one",
        "5.00",
    )
    changed = (
        await as_alice.patch(f"/api/v1/entries/{entry['id']}", json={"body": "second #two"})
    ).json()
    assert changed["tags"] == ["one", "two"]


async def test_delete_removes_the_entry_from_every_list(as_alice, session):
    entry = await add(as_alice, title="Gone soon")
    assert (await as_alice.delete(f"/api/v1/entries/{entry['id']}")).status_code == 204
    assert (await as_alice.get(f"/api/v1/entries/{entry['id']}")).status_code == 404
    assert (await as_alice.get("/api/v1/entries", params={"q": "gone"})).json()["items"] == []


async def test_the_list_pages_by_cursor_newest_day_first(as_alice):
    start = date(2026, 1, 1)
    for i in range(45):
        await add(as_alice, title=f"win {i}", day=(start + timedelta(days=i // 2)).isoformat())
    seen, cursor = [], None
    while True:
        params = {"limit": 20} | ({"cursor": cursor} if cursor else {})
        page = (await as_alice.get("/api/v1/entries", params=params)).json()
        seen += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == 45 and len({e["id"] for e in seen}) == 45
    assert [e["day"] for e in seen] == sorted((e["day"] for e in seen), reverse=True)
    assert (await as_alice.get("/api/v1/entries", params={"cursor": "garbage!"})).status_code == 422


async def test_filters_by_category_tag_mood_and_dates(as_alice):
    health = await category_id(as_alice, "Health")
    await add(as_alice, title="Ran 5k", category_id=health, mood=4, tags=["run"], day="2026-02-01")
    await add(as_alice, title="Shipped", mood=5, day="2026-02-10")
    await add(as_alice, title="Ran 10k", category_id=health, mood=5, tags=["run"], day="2026-03-01")

    async def titles(**params):  # type: ignore[no-untyped-def]
        return [
            e["title"]
            for e in (await as_alice.get("/api/v1/entries", params=params)).json()["items"]
        ]

    assert await titles(category_id=health) == ["Ran 10k", "Ran 5k"]
    assert await titles(tag="#RUN") == ["Ran 10k", "Ran 5k"]
    assert await titles(mood=5) == ["Ran 10k", "Shipped"]
    assert await titles(date_from="2026-02-05", date_to="2026-02-28") == ["Shipped"]
    assert await titles(category_id=health, mood=4) == ["Ran 5k"]


async def test_search_stems_ranks_and_highlights(as_alice):
    await add(as_alice, title="Quiet day", body="Read a book about running shoes")
    await add(as_alice, title="Running", body="I ran my first marathon, running all the way")
    await add(as_alice, title="Cooking", body="Made pasta")
    page = (await as_alice.get("/api/v1/entries", params={"q": "runs"})).json()
    assert [e["title"] for e in page["items"]] == ["Running", "Quiet day"], (
        "title matches rank first"
    )
    assert (await as_alice.get("/api/v1/entries", params={"q": "pasta marathon"})).json()[
        "items"
    ] == []
    assert [
        e["title"]
        for e in (await as_alice.get("/api/v1/entries", params={"q": "past"})).json()["items"]
    ] == ["Cooking"]


async def test_search_survives_query_syntax_and_finds_tags(as_alice):
    await add(as_alice, title="Pitch", body="won the pitch", tags=["sales"])
    for q in ['"unclosed', "a OR", "NEAR(", "*", "-", "'; DROP TABLE entry; --", "sales)"]:
        response = await as_alice.get("/api/v1/entries", params={"q": q})
        assert response.status_code == 200, q
    assert [
        e["title"]
        for e in (await as_alice.get("/api/v1/entries", params={"q": "sales"})).json()["items"]
    ] == ["Pitch"]


@pytest.mark.parametrize("payload", XSS)
async def test_markup_in_entries_stays_inert_in_the_api(as_alice, payload):
    entry = await add(as_alice, title=payload, body=payload, tags=[])
    assert_inert(entry["body_html"])
    assert entry["title"] == payload, "the title is stored as typed and escaped when shown"


async def test_categories_are_created_renamed_merged_and_deleted_without_losing_entries(
    as_alice, session
):
    names = [c["name"] for c in (await as_alice.get("/api/v1/categories")).json()]
    assert names == ["Health", "Learning", "Money", "Personal", "Relationships", "Work"]
    sport = (
        await as_alice.post("/api/v1/categories", json={"name": "Sport", "colour": "#16A34A"})
    ).json()
    assert sport["colour"] == "#16a34a"
    duplicate = await as_alice.post("/api/v1/categories", json={"name": "sport"})
    assert duplicate.status_code == 422 and "already have a category called sport" in duplicate.text
    health = await category_id(as_alice, "Health")
    await add(as_alice, title="Swim", category_id=sport["id"])

    merged = await as_alice.patch(f"/api/v1/categories/{sport['id']}", json={"merge_into": health})
    assert merged.json()["name"] == "Health"
    listed = {
        c["name"]: c["entry_count"] for c in (await as_alice.get("/api/v1/categories")).json()
    }
    assert "Sport" not in listed and listed["Health"] == 1

    assert (await as_alice.delete(f"/api/v1/categories/{health}")).status_code == 204
    entries = (await as_alice.get("/api/v1/entries")).json()["items"]
    assert [(e["title"], e["category"]) for e in entries] == [("Swim", None)]


async def test_bob_cannot_touch_alices_categories(as_alice, as_bob):
    work = await category_id(as_alice, "Work")
    assert (await as_bob.patch(f"/api/v1/categories/{work}", json={"name": "x"})).status_code == 404
    assert (await as_bob.delete(f"/api/v1/categories/{work}")).status_code == 404
    bobs_work = await category_id(as_bob, "Work")
    response = await as_bob.patch(f"/api/v1/categories/{bobs_work}", json={"merge_into": work})
    assert response.status_code == 422


async def test_preferences_are_read_and_checked(as_alice):
    assert (await as_alice.get("/api/v1/users/me/preferences")).json() == {
        "timezone": "UTC",
        "week_start": 0,
        "theme": "system",
        "base_currency": "USD",
        "reminder_time": None,
        "reminder_days": [1, 2, 3, 4, 5, 6, 7],
        "digest": "off",
    }
    ok = await as_alice.patch(
        "/api/v1/users/me/preferences",
        json={"timezone": "Europe/Paris", "week_start": 6, "theme": "dark"},
    )
    assert ok.json()["timezone"] == "Europe/Paris" and ok.json()["week_start"] == 6
    for bad in [
        {"timezone": "Mars/Olympus"},
        {"week_start": 3},
        {"theme": "neon"},
        {"base_currency": "XYZ"},
    ]:
        assert (await as_alice.patch("/api/v1/users/me/preferences", json=bad)).status_code == 422


async def test_tags_are_indexed_for_filtering(as_alice, session):
    await add(as_alice, body="#one #two", tags=["three"])
    rows = (await session.execute(select(EntryTag.tag).order_by(EntryTag.tag))).scalars().all()
    assert rows == ["one", "three", "two"]


async def test_a_hashtag_that_is_not_a_valid_tag_stays_plain_text(as_alice):
    entry = await add(as_alice, body="#İstanbul trip and #" + "x" * 60 + " and #ok")
    assert entry["tags"] == ["ok"]
