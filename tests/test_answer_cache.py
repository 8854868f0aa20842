"""Cached pages and stats (app/cache.py) are never stale and never someone else's.

Every change to a user's entries or categories bumps their diary version (database
triggers), and the version is part of every cache key, so the next answer shows the change.
"""

import gzip

import httpx
from sqlalchemy import select

from app.models import Category, User
from app.schemas import EntryCreate, EntryUpdate
from app.services import categories, entries
from tests.factories import bearer_token, post_form, sign_in

SAME_ORIGIN = {"Sec-Fetch-Site": "same-origin", "Accept-Encoding": "gzip"}


async def version(session, user: User) -> int:  # type: ignore[no-untyped-def]
    stmt = select(User.diary_version).where(User.id == user.id)  # type: ignore[arg-type]
    return int((await session.execute(stmt)).scalar_one())


async def test_every_change_to_entries_or_categories_bumps_the_diary_version(session, alice):
    seen = [await version(session, alice)]

    async def changed() -> None:
        now = await version(session, alice)
        assert now > seen[-1]
        seen.append(now)

    entry = await entries.create_entry(session=session, user=alice, data=EntryCreate(title="Ran"))
    await changed()
    await entries.update_entry(
        session=session, user=alice, entry=entry, data=EntryUpdate(title="Ran 5k")
    )
    await changed()
    await entries.delete_entry(session=session, user=alice, entry=entry)
    await changed()
    await entries.restore_entry(session=session, entry=entry)
    await changed()
    category = await categories.create_category(
        session=session, user=alice, name="Garden", colour="#16a34a"
    )
    await changed()
    await categories.update_category(
        session=session, user=alice, category=category, name="Yard", colour=None
    )
    await changed()
    await categories.delete_category(session=session, user=alice, category=category)
    await changed()


async def test_another_users_changes_leave_the_version_alone(session, alice, bob):
    before = await version(session, alice)
    await entries.create_entry(session=session, user=bob, data=EntryCreate(title="Bob's"))
    assert await version(session, alice) == before


async def test_a_new_win_shows_on_the_next_list_page(alice_client):
    assert "Planted tomatoes" not in (await alice_client.get("/entries")).text
    await alice_client.get("/entries")  # now cached
    await post_form(alice_client, "/entries", {"title": "Planted tomatoes"})
    assert "Planted tomatoes" in (await alice_client.get("/entries")).text


async def test_a_renamed_category_shows_on_the_next_list_page(alice_client, session, alice):
    work = (
        (
            await session.execute(select(Category).where(Category.user_id == alice.id))  # type: ignore[arg-type]
        )
        .scalars()
        .first()
    )
    await entries.create_entry(
        session=session, user=alice, data=EntryCreate(title="Demo day", category_id=work.id)
    )
    old_name = work.name
    assert f">{old_name}</span>" in (await alice_client.get("/entries")).text
    await categories.update_category(
        session=session, user=alice, category=work, name="Craft", colour=None
    )
    page = (await alice_client.get("/entries")).text
    assert ">Craft</span>" in page and f">{old_name}</span>" not in page


async def test_stats_follow_writes_made_through_the_api(client, alice):
    token = await bearer_token(client, "alice@example.com")
    auth = {"Authorization": f"Bearer {token}"}
    assert (await client.get("/api/v1/stats/summary", headers=auth)).json()["total"] == 0
    assert (await client.get("/api/v1/stats/summary", headers=auth)).json()["total"] == 0
    created = await client.post("/api/v1/entries", json={"title": "Fixed it"}, headers=auth)
    assert created.status_code == 201
    assert (await client.get("/api/v1/stats/summary", headers=auth)).json()["total"] == 1


async def test_a_preference_change_shows_on_the_next_page(alice_client):
    assert 'data-theme="system"' in (await alice_client.get("/entries")).text
    await post_form(alice_client, "/settings/theme", {"theme": "dark"})
    assert 'data-theme="dark"' in (await alice_client.get("/entries")).text


async def test_each_user_gets_their_own_cached_page(app, alice_client, session, bob):
    await entries.create_entry(session=session, user=bob, data=EntryCreate(title="Bob's secret"))
    assert "Bob's secret" not in (await alice_client.get("/entries")).text
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as bob_client:
        await sign_in(bob_client, "bob@example.com")
        assert "Bob&#39;s secret" in (await bob_client.get("/entries")).text
    assert "Bob" not in (await alice_client.get("/entries")).text


async def test_a_flash_message_is_shown_once_even_with_the_page_cached(alice_client):
    await alice_client.get("/entries")
    await post_form(alice_client, "/entries", {"title": "Wrote the note"})
    assert "Saved: Wrote the note" in (await alice_client.get("/entries")).text
    assert "Saved: Wrote the note" not in (await alice_client.get("/entries")).text


async def test_a_cached_page_is_gzipped_only_for_our_own_pages(app, alice_client):
    first = await alice_client.get("/entries", headers=SAME_ORIGIN)
    hits = app.state.answers.hits
    again = await alice_client.get("/entries", headers=SAME_ORIGIN)
    assert app.state.answers.hits == hits + 1
    assert again.headers["content-encoding"] == "gzip" and again.text == first.text
    plain = await alice_client.get("/entries", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers and plain.text == first.text
    cross_site = await alice_client.get(
        "/entries", headers={"Sec-Fetch-Site": "cross-site", "Accept-Encoding": "gzip"}
    )
    assert "content-encoding" not in cross_site.headers  # BREACH: see app.static.Compress
    assert gzip.decompress(gzip.compress(first.content)) == cross_site.content
