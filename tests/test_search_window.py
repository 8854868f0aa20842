"""Search ranks a bounded window of the newest matches; older matches follow, newest first.
Every match is still reachable page by page, exactly once, and the count stops at its cap."""

import uuid
from datetime import date, timedelta

import pytest

from app.services import entries
from app.services.entries import Filters
from tests.factories import make_entry, make_user


@pytest.fixture
async def diary(session, alice, bob):
    """30 wins with the word, in days order; every fifth also says it in its title (ranked
    higher), and 5 without it; bob has the word too (never alice's results)."""
    for i in range(35):
        word = i < 30
        title = f"Progress report {i}" if word and i % 5 == 0 else f"Day {i}"
        body = "Made real progress today." if word else "A quiet day."
        await make_entry(
            session, alice, title=title, body=body, day=date(2026, 1, 1) + timedelta(days=i)
        )
    await make_entry(session, bob, title="Progress")


async def all_pages(session, user, q: str, limit: int = 4) -> list[list[str]]:
    pages, cursor = [], None
    while True:
        page = await entries.list_entries(
            session=session, user=user, filters=Filters(q=q), cursor=cursor, limit=limit
        )
        pages.append([item.entry.title for item in page.items])
        if not page.next_cursor:
            return pages
        cursor = page.next_cursor


async def test_every_match_once_ranked_window_first(session, alice, diary, monkeypatch):
    monkeypatch.setattr(entries, "RANKED", 10)
    pages = await all_pages(session, alice, "progress")
    titles = [t for page in pages for t in page]
    assert len(titles) == len(set(titles)) == 30
    window = titles[:10]  # the newest 10 matches (days 20-29), the titled ones first
    assert set(window) == {f"Progress report {i}" for i in (20, 25)} | {
        f"Day {i}" for i in range(20, 30) if i % 5
    }
    assert window[:2] == ["Progress report 25", "Progress report 20"]
    older = titles[10:]  # then newest first, unranked
    expected = [f"Progress report {i}" if i % 5 == 0 else f"Day {i}" for i in range(19, -1, -1)]
    assert older == expected


async def test_the_last_word_is_a_prefix_and_stemmed(session, alice, diary):
    for q in ("progr", "progress", "progressing", "PROGRESS"):
        page = await entries.list_entries(session=session, user=alice, filters=Filters(q=q))
        assert page.total == 30, q
        assert page.items[0].title_html and "<mark>" in page.items[0].title_html
    page = await entries.list_entries(session=session, user=alice, filters=Filters(q="progx"))
    assert page.total == 0 and page.items == []


async def test_the_count_stops_at_its_cap(session, alice, diary, monkeypatch):
    monkeypatch.setattr(entries, "COUNT_CAP", 12)
    page = await entries.list_entries(session=session, user=alice, filters=Filters(q="made"))
    assert (page.total, page.more) == (12, True)
    monkeypatch.setattr(entries, "COUNT_CAP", 30)
    page = await entries.list_entries(session=session, user=alice, filters=Filters(q="made"))
    assert (page.total, page.more) == (30, False)


async def test_filters_apply_before_the_window(session, alice, diary, monkeypatch):
    """A filter narrows the matches first: an old match in range is found, not cut off."""
    monkeypatch.setattr(entries, "RANKED", 3)
    filters = Filters(q="progress", date_to=date(2026, 1, 3))
    page = await entries.list_entries(session=session, user=alice, filters=filters)
    assert [item.entry.title for item in page.items] == ["Progress report 0", "Day 2", "Day 1"]


async def test_a_user_whose_id_begins_alike_is_not_in_the_results(session, alice, diary):
    """SQLite's index finds a user's rows by the first group of their id (owner_term): another
    account whose id begins with the same group is still kept out."""
    twin_id = uuid.UUID(str(alice.id).split("-")[0] + "-0000-4000-8000-000000000000")
    twin = await make_user(session, "twin@example.com", id=twin_id)
    assert entries.owner_term(twin) == entries.owner_term(alice)
    await make_entry(session, twin, title="Progress of the twin", body="progress")
    page = await entries.list_entries(session=session, user=alice, filters=Filters(q="progress"))
    assert page.total == 30 and all(item.entry.user_id == alice.id for item in page.items)
    page = await entries.list_entries(session=session, user=twin, filters=Filters(q="progress"))
    assert [item.entry.title for item in page.items] == ["Progress of the twin"]


async def test_the_last_word_weighs_as_much_as_the_others(session, alice):
    """Two wins alike but for which word they repeat tie in the ranking, so the newer comes
    first: the last word, looked up as a prefix too, is not counted twice (SQLite's query
    named it once as typed and once among the index's terms that begin with it; PostgreSQL's
    `word | word:*` scores it once, which this holds too)."""
    await make_entry(session, alice, title="Day", body="beta beta beta alpha")
    await make_entry(session, alice, title="Day", body="alpha alpha alpha beta")
    for q in ("alpha beta", "beta alpha"):
        page = await entries.list_entries(session=session, user=alice, filters=Filters(q=q))
        assert [item.entry.body for item in page.items] == [
            "alpha alpha alpha beta",
            "beta beta beta alpha",
        ], q
