"""SECURITY.md rows 35-37 and 39: lost updates, crafted input, import bypass, deleted data.

Every test runs on SQLite and, with TEST_DATABASE_URL set, on PostgreSQL.
"""

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import httpx
import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.exc import OperationalError

from app import jobs
from app.models import Category, Entry, EntryTag
from app.models.base import utcnow
from app.schemas import DAY_RANGE
from app.services import categories, entries
from tests.factories import bearer_token, post_form, sign_in

HTMX = {"HX-Request": "true"}


@pytest.fixture
async def api(app) -> AsyncIterator[httpx.AsyncClient]:  # type: ignore[no-untyped-def]
    """A client of its own for bearer-token calls, next to `client`'s signed-in pages."""
    transport = httpx.ASGITransport(app=app, client=("203.0.113.8", 51000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


async def auth(client: httpx.AsyncClient, email: str = "alice@example.com") -> dict[str, str]:
    return {"Authorization": f"Bearer {await bearer_token(client, email)}"}


async def new_entry(client: httpx.AsyncClient, headers: dict[str, str], **fields: object) -> int:
    response = await client.post(
        "/api/v1/entries", json={"title": "A win", **fields}, headers=headers
    )
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


async def category_ids(client: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, int]:
    listed = (await client.get("/api/v1/categories", headers=headers)).json()
    return {c["name"]: c["id"] for c in listed}


async def stored(session, entry_id: int) -> Entry:  # type: ignore[no-untyped-def]
    stmt = select(Entry).where(Entry.id == entry_id).execution_options(populate_existing=True)
    return (await session.execute(stmt)).scalar_one()


# --- Row 35: lost updates ---------------------------------------------------------------


async def test_row35_a_stale_if_match_is_412_on_patch_and_delete_and_writes_nothing(
    client, session, alice
):
    headers = await auth(client)
    entry_id = await new_entry(client, headers, title="First", body="one")
    read = await client.get(f"/api/v1/entries/{entry_id}", headers=headers)
    first_tag = read.headers["etag"]
    assert first_tag.startswith('"') and first_tag.endswith('"')

    ok = await client.patch(
        f"/api/v1/entries/{entry_id}",
        json={"title": "Second"},
        headers={**headers, "If-Match": first_tag},
    )
    assert ok.status_code == 200 and ok.headers["etag"] != first_tag
    for if_match in (first_tag, f"W/{ok.headers['etag']}", "garbage", '"99999999999999999999"'):
        stale = await client.patch(
            f"/api/v1/entries/{entry_id}",
            json={"title": "Lost?"},
            headers={**headers, "If-Match": if_match},
        )
        assert stale.status_code == 412, if_match
        assert stale.json()["detail"] == "ENTRY_CHANGED"
        assert stale.headers["etag"] == ok.headers["etag"]
        gone = await client.delete(
            f"/api/v1/entries/{entry_id}", headers={**headers, "If-Match": if_match}
        )
        assert gone.status_code == 412
    kept = await stored(session, entry_id)
    assert kept.title == "Second" and kept.deleted_at is None

    # A list naming the current version, `*`, or no If-Match at all work as before.
    listed = f'"0", {ok.headers["etag"]}'
    assert (
        await client.patch(
            f"/api/v1/entries/{entry_id}", json={"mood": 4}, headers={**headers, "If-Match": listed}
        )
    ).status_code == 200
    star = {**headers, "If-Match": "*"}
    assert (
        await client.patch(f"/api/v1/entries/{entry_id}", json={"mood": 5}, headers=star)
    ).status_code == 200
    assert (
        await client.patch(f"/api/v1/entries/{entry_id}", json={"mood": 3}, headers=headers)
    ).status_code == 200
    current = (await client.get(f"/api/v1/entries/{entry_id}", headers=headers)).headers["etag"]
    deleted = await client.delete(
        f"/api/v1/entries/{entry_id}", headers={**headers, "If-Match": current}
    )
    assert deleted.status_code == 204
    assert (await stored(session, entry_id)).deleted_at is not None


async def test_row35_two_saves_from_one_version_cannot_both_pass(client, session, alice):
    headers = await auth(client)
    entry_id = await new_entry(client, headers, title="Shared")
    tag = (await client.get(f"/api/v1/entries/{entry_id}", headers=headers)).headers["etag"]

    async def save(title: str) -> httpx.Response:
        return await client.patch(
            f"/api/v1/entries/{entry_id}",
            json={"title": title},
            headers={**headers, "If-Match": tag},
        )

    answers = await asyncio.gather(*(save(f"Tab {n}") for n in range(6)))
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200] + [412] * 5, statuses
    winner = next(a for a in answers if a.status_code == 200).json()["title"]
    assert (await stored(session, entry_id)).title == winner


async def test_row35_a_stale_edit_form_shows_both_texts_and_loses_neither(
    client, api, session, alice
):
    await sign_in(client, "alice@example.com")
    headers = await auth(api)
    entry_id = await new_entry(api, headers, title="Original", body="the first text")
    form_page = await client.get(f"/entries/{entry_id}/edit")
    assert 'name="version" value="1"' in form_page.text
    # Another tab saves first.
    other = await api.patch(
        f"/api/v1/entries/{entry_id}", json={"body": "saved meanwhile in tab two"}, headers=headers
    )
    assert other.status_code == 200
    mine = {"title": "Original", "body": "my words from tab one", "version": "1", "tags": ""}

    plain = await post_form(client, f"/entries/{entry_id}", mine)
    assert plain.status_code == 409 and "<html" in plain.text
    for text_shown in ("Your version", "Saved meanwhile", "my words from tab one"):
        assert text_shown in plain.text
    assert "saved meanwhile in tab two" in plain.text
    assert "Keep yours (overwrite)" in plain.text and "Take theirs" in plain.text
    assert (await stored(session, entry_id)).body == "saved meanwhile in tab two"

    fragment = await post_form(client, f"/entries/{entry_id}", mine, headers=HTMX)
    assert fragment.status_code == 200 and "<html" not in fragment.text
    assert (
        "my words from tab one" in fragment.text and "saved meanwhile in tab two" in fragment.text
    )
    assert (await stored(session, entry_id)).body == "saved meanwhile in tab two"

    # The conflict form carries the saved version: sending it keeps mine.
    assert 'name="version" value="2"' in fragment.text
    kept = await post_form(client, f"/entries/{entry_id}", {**mine, "version": "2"})
    assert kept.status_code == 303
    assert (await stored(session, entry_id)).body == "my words from tab one"
    # A form without a version (an older page, a script) saves as before.
    plain_save = await post_form(client, f"/entries/{entry_id}", {"title": "No version"})
    assert plain_save.status_code == 303
    assert (await stored(session, entry_id)).title == "No version"


async def test_row35_a_create_racing_a_merge_is_moved_along_or_refused_never_orphaned(
    client, session, alice, monkeypatch
):
    headers = await auth(client)
    ids = await category_ids(client, headers)
    source, target = ids["Work"], ids["Health"]
    await new_entry(client, headers, title="Before the merge", category_id=source)
    moved, go = asyncio.Event(), asyncio.Event()
    move = categories._move_entries

    async def paused(*args: object) -> None:
        await move(*args)  # type: ignore[arg-type]
        if args[3] is not None:  # a merge (not a delete): hold it between move and delete
            moved.set()
            await go.wait()

    monkeypatch.setattr(categories, "_move_entries", paused)
    merge = asyncio.create_task(
        client.patch(f"/api/v1/categories/{source}", json={"merge_into": target}, headers=headers)
    )
    await asyncio.wait_for(moved.wait(), 10)
    create = asyncio.create_task(
        client.post(
            "/api/v1/entries",
            json={"title": "Filed during the merge", "category_id": source},
            headers=headers,
        )
    )
    await asyncio.wait({create}, timeout=1)  # done (unlocked) or waiting for the merge's lock
    go.set()
    merged, created = await merge, await create

    assert merged.status_code == 200, merged.text
    assert created.status_code in (201, 422), created.text
    if created.status_code == 422:
        assert "Choose one of your categories." in created.text
    uncategorised = select(func.count()).where(
        Entry.user_id == alice.id, Entry.category_id.is_(None)
    )
    assert (await session.execute(uncategorised)).scalar_one() == 0
    filed = select(func.count()).where(Entry.user_id == alice.id, Entry.category_id == target)
    assert (await session.execute(filed)).scalar_one() == (2 if created.status_code == 201 else 1)


async def test_row35_a_create_racing_a_category_delete_is_written_or_refused_never_500(
    client, session, alice, monkeypatch
):
    headers = await auth(client)
    source = (await category_ids(client, headers))["Work"]
    await new_entry(client, headers, title="Before the delete", category_id=source)
    moved, go = asyncio.Event(), asyncio.Event()
    move = categories._move_entries

    async def paused(*args: object) -> None:
        await move(*args)  # type: ignore[arg-type]
        moved.set()
        await go.wait()

    monkeypatch.setattr(categories, "_move_entries", paused)
    delete = asyncio.create_task(client.delete(f"/api/v1/categories/{source}", headers=headers))
    await asyncio.wait_for(moved.wait(), 10)
    create = asyncio.create_task(
        client.post(
            "/api/v1/entries",
            json={"title": "Filed during the delete", "category_id": source},
            headers=headers,
        )
    )
    await asyncio.wait({create}, timeout=1)
    go.set()
    deleted, created = await delete, await create

    assert deleted.status_code == 204, deleted.text
    assert created.status_code in (201, 422), created.text
    rows = select(func.count()).where(Entry.user_id == alice.id, Entry.category_id == source)
    assert (await session.execute(rows)).scalar_one() == 0


async def test_row35_a_merge_retries_a_deadlock_once(client, session, alice, monkeypatch):
    headers = await auth(client)
    ids = await category_ids(client, headers)
    entry_id = await new_entry(client, headers, category_id=ids["Work"])
    merge = categories._merge
    tries: list[int] = []

    class Deadlock(Exception):
        sqlstate = "40P01"

    async def once_deadlocked(*args: object) -> Category:
        tries.append(1)
        if len(tries) == 1:
            raise OperationalError("UPDATE entry ...", {}, Deadlock("deadlock detected"))
        return await merge(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(categories, "_merge", once_deadlocked)
    merged = await client.patch(
        f"/api/v1/categories/{ids['Work']}", json={"merge_into": ids["Health"]}, headers=headers
    )
    assert merged.status_code == 200 and merged.json()["name"] == "Health"
    assert len(tries) == 2
    assert (await stored(session, entry_id)).category_id == ids["Health"]


async def test_row35_names_that_differ_only_by_case_or_spaces_are_one_even_in_a_race(
    client, session, alice, monkeypatch
):
    headers = await auth(client)

    async def check_passed(*_args: object) -> bool:  # both requests got past the check
        return False

    monkeypatch.setattr(categories, "_name_taken", check_passed)
    made = await client.post("/api/v1/categories", json={"name": "Deep Work"}, headers=headers)
    assert made.status_code == 201
    for look_alike in ("deep work", "  DEEP   WORK "):
        again = await client.post("/api/v1/categories", json={"name": look_alike}, headers=headers)
        assert again.status_code == 422, look_alike
        assert "already have a category called" in again.text
    renamed = await client.patch(
        f"/api/v1/categories/{(await category_ids(client, headers))['Work']}",
        json={"name": "deep WORK"},
        headers=headers,
    )
    assert renamed.status_code == 422
    names = (await session.execute(select(Category.name).where(Category.user_id == alice.id))).all()
    assert sorted(n.lower() for (n,) in names).count("deep work") == 1


# --- Row 36: crafted input --------------------------------------------------------------


def cursor(value: str) -> str:
    return base64.urlsafe_b64encode(value.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "forged",
    [
        "d:2026-01-01:9223372036854775808",  # 2^63: past any 64-bit integer
        "d:2026-01-01:" + "9" * 40,
        "d:2026-01-01:-1",
        "d:0001-01-01:5",
        "d:9999-12-31:5",
    ],
)
async def test_row36_forged_cursors_are_a_clear_422_and_pages_fall_back(client, alice, forged):
    headers = await auth(client)
    await new_entry(client, headers)
    response = await client.get(f"/api/v1/entries?cursor={cursor(forged)}", headers=headers)
    assert response.status_code == 422
    assert response.json()["detail"][0]["msg"] == "This page link is not valid any more."
    await sign_in(client, "alice@example.com")
    page = await client.get(f"/entries?cursor={cursor(forged)}")
    assert page.status_code == 200 and "A win" in page.text


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/entries?date_from=0001-01-01",
        "/api/v1/entries?date_to=9999-12-31",
        "/api/v1/stats/timeline?period=month&date_to=9999-12-31",
        "/api/v1/stats/timeline?period=week&date_from=0001-01-01&date_to=0001-02-01",
        "/api/v1/stats/categories?date_from=1899-12-31",
        "/api/v1/stats/mood?date_to=3000-01-01",
        "/api/v1/stats/heatmap?year=1",
        "/api/v1/stats/heatmap?year=9999",
    ],
)
async def test_row36_api_dates_outside_1900_to_2999_are_422_with_a_message(client, alice, path):
    response = await client.get(path, headers=await auth(client))
    assert response.status_code == 422, response.text
    assert "1900" in json.dumps(response.json()["detail"])


async def test_row36_api_dates_at_the_edges_of_the_range_work(client, alice):
    headers = await auth(client)
    for day in ("1900-01-01", "2999-12-31"):
        await new_entry(client, headers, day=day)
    edges = "date_from=1900-01-01&date_to=2999-12-31"
    assert (await client.get(f"/api/v1/entries?{edges}", headers=headers)).status_code == 200
    for period in ("day", "week", "month"):
        near_end = f"/api/v1/stats/timeline?period={period}&date_from=2999-01-01&date_to=2999-12-31"
        assert (await client.get(near_end, headers=headers)).status_code == 200
    assert (
        await client.post(
            "/api/v1/entries", json={"title": "x", "day": "1899-12-31"}, headers=headers
        )
    ).status_code == 422


@pytest.mark.parametrize(
    "path",
    [
        "/review?period=year&date=9999-06-01",
        "/review?period=week&date=0001-01-01",
        "/review?period=month&date=0001-01-31",
        "/review?period=month&date=not-a-date",
        "/export/print?date_to=0001-01-10",
        "/export/print?date_from=9999-12-01&date_to=9999-12-31",
        "/dashboard?year=1",
        "/dashboard?year=9999",
    ],
)
async def test_row36_pages_with_dates_outside_the_range_say_so(client, alice, path):
    await sign_in(client, "alice@example.com")
    page = await client.get(path)
    assert page.status_code == 422 and "<html" in page.text
    assert (DAY_RANGE in page.text) or ("Enter a date like 2026-11-20." in page.text)


async def test_row36_pages_at_the_edges_of_the_range_work(client, alice):
    await sign_in(client, "alice@example.com")
    for path in (
        "/review?period=year&date=2999-12-31",
        "/review?period=week&date=1900-01-01",
        "/export/print?date_from=1900-01-01&date_to=1900-01-20",
        "/dashboard?year=2999",
    ):
        assert (await client.get(path)).status_code == 200, path


async def upload(client, headers, document: object, name: str = "export.json", dry_run=False):  # type: ignore[no-untyped-def]
    content = document if isinstance(document, bytes) else json.dumps(document).encode()
    return await client.post(
        f"/api/v1/import?dry_run={str(dry_run).lower()}",
        files={"file": (name, content)},
        headers=headers,
    )


def ours(entries_: list[object], categories_: object = None) -> dict[str, object]:
    return {"format": "successdiary", "version": 1, "entries": entries_, "categories": categories_}


DAY_ONE_GOOD = {"creationDate": "2024-03-01T10:00:00Z", "text": "Ran 10k"}
JRNL_GOOD = {"date": "2024-03-01", "title": "Ran 10k", "body": ""}


@pytest.mark.parametrize(
    ("document", "said"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'{"entries": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "nested too deeply"),
        ({"entries": [DAY_ONE_GOOD, {"creationDate": 5, "text": "x"}]}, "entry 2, creationDate"),
        ({"entries": [{"creationDate": "yesterday", "text": "x"}]}, "entry 1, creationDate"),
        ({"entries": [{"creationDate": "2024-03-01T10:00:00Z", "tags": 7}]}, "entry 1, tags"),
        ({"entries": [{"creationDate": "2024-03-01T10:00:00Z", "text": ["x"]}]}, "entry 1, text"),
        (
            {"entries": [{"creationDate": "0001-01-01T00:00:00Z", "timeZone": "America/New_York"}]},
            "between 1900 and 2999",
        ),
        ({"entries": [JRNL_GOOD, {"date": "2024-03-01", "title": {"a": 1}}]}, "entry 2, title"),
        ({"entries": [{"date": "2024-03-01", "title": "x", "tags": "run"}]}, "entry 1, tags"),
        (ours([], "Work"), "'categories' must be a list"),
        (ours([], 5), "'categories' must be a list"),
        (ours([], [["Work"]]), "category 1: not an object"),
        (ours([{"day": "2024-03-01", "title": "x", "category": 5}]), "entry 1, category"),
        (ours([{"day": "2024-03-01", "title": "x", "created_at": 12}]), "entry 1, created_at"),
        (
            ours([{"day": "2024-03-01", "title": "x", "created_at": "0001-01-01T00:00:00+14:00"}]),
            "entry 1, created_at",
        ),
    ],
)
async def test_row36_deep_or_mistyped_imports_are_422_naming_the_record(
    client, session, alice, document, said
):
    response = await upload(client, await auth(client), document)
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert detail["code"] == "IMPORT_INVALID"
    assert any(said in error for error in detail["errors"]), detail["errors"]
    assert (await session.execute(select(func.count()).select_from(Entry))).scalar_one() == 0


# --- Row 37: imports pass the API's validation -------------------------------------------


@pytest.mark.parametrize(
    ("category", "said"),
    [
        ({"name": "Wo\x07rk"}, "control character"),
        ({"name": "\u202ekroW"}, "invisible formatting character (U+202E)"),
        ({"name": "Work\u200b"}, "invisible formatting character (U+200B)"),
        ({"name": "   "}, "Give the category a name."),
        ({"name": ""}, "Give the category a name."),
        ({"name": "x" * 51}, "at most 50 characters"),
        ({"name": "Sport", "colour": "url(#x"}, "Use a colour like #2563eb."),
        ({"name": "Sport", "colour": "red"}, "Use a colour like #2563eb."),
    ],
)
async def test_row37_imported_categories_pass_the_api_schema(
    client, session, alice, category, said
):
    headers = await auth(client)
    response = await upload(client, headers, ours([], [category]))
    assert response.status_code == 422, response.text
    assert any(said in e for e in response.json()["detail"]["errors"]), response.text
    assert any(said in e for e in response.json()["detail"]["errors"])
    if "colour" not in category and category["name"].strip():  # the name itself is wrong
        record = {"day": "2024-03-01", "title": "x", "category": category["name"]}
        named = await upload(client, headers, ours([record]))
        assert named.status_code == 422, category
        assert any(said in e for e in named.json()["detail"]["errors"])
    # The API says the same about the same name.
    api = await client.post(
        "/api/v1/categories", json={"colour": "#123456", **category}, headers=headers
    )
    assert api.status_code == 422
    names = (await session.execute(select(Category.name).where(Category.user_id == alice.id))).all()
    assert len(names) == len(categories.DEFAULTS)


async def test_row37_look_alike_category_names_become_one_and_the_preview_says_so(
    client, api, session, alice
):
    headers = await auth(api)
    document = ours(
        [
            {"day": "2024-03-01", "title": "One", "category": "WORK"},
            {"day": "2024-03-02", "title": "Two", "category": "deep  work"},
            {"day": "2024-03-03", "title": "Three", "category": "Deep Work"},
        ],
        [{"name": "  work "}, {"name": "Deep  Work", "colour": "#112233"}, {"name": "deep work"}],
    )
    preview = (await upload(api, headers, document, dry_run=True)).json()
    assert preview["new_categories"] == ["Deep Work"]
    assert preview["merged_categories"] == ["work → Work", "WORK → Work", "deep work → Deep Work"]
    assert (await upload(api, headers, document)).status_code == 200
    rows = (
        await session.execute(
            select(Category.name, Category.colour, func.count(Entry.id))
            .outerjoin(Entry, Entry.category_id == Category.id)
            .where(Category.user_id == alice.id)
            .group_by(Category.id, Category.name, Category.colour)
        )
    ).all()
    by_name = {name: (colour, n) for name, colour, n in rows}
    assert by_name["Deep Work"] == ("#112233", 2) and by_name["Work"][1] == 1
    assert len(by_name) == len(categories.DEFAULTS) + 1

    await sign_in(client, "alice@example.com")
    page = await post_form(
        client,
        "/import/preview",
        {},
        files={"file": ("export.json", json.dumps(ours([], [{"name": "HEALTH"}])).encode())},
    )
    assert page.status_code == 200
    assert "differ only by case or spaces" in page.text and "HEALTH → Health" in page.text


# --- Row 39: deleted data leaves the database and the search index -----------------------


async def search_hits(session, word: str) -> set[int]:  # type: ignore[no-untyped-def]
    if session.get_bind().dialect.name == "sqlite":
        query = text("SELECT rowid FROM entry_fts WHERE entry_fts MATCH :word")
    else:
        query = text("SELECT id FROM entry WHERE search @@ to_tsquery('english', :word)")
    return {row[0] for row in (await session.execute(query, {"word": word}))}


async def test_row39_deleted_entries_leave_the_database_and_search_index_after_the_window(
    client, session, alice, bob
):
    headers = await auth(client)
    bob_headers = await auth(client, "bob@example.com")
    kept = await new_entry(client, headers, title="Zanzibar kept", tags=["trip"])
    old = await new_entry(client, headers, title="Zanzibar old", tags=["trip"])
    recent = await new_entry(client, headers, title="Zanzibar recent", tags=["trip"])
    bobs = await new_entry(client, bob_headers, title="Zanzibar bob", tags=["trip"])
    for entry_id, who in ((old, headers), (recent, headers), (bobs, bob_headers)):
        assert (await client.delete(f"/api/v1/entries/{entry_id}", headers=who)).status_code == 204
    assert await search_hits(session, "zanzibar") == {kept, old, recent, bobs}

    now = utcnow()
    await session.execute(
        update(Entry)
        .where(Entry.id.in_([old, bobs]))
        .values(deleted_at=now - timedelta(minutes=11))
    )
    await session.commit()
    assert await entries.purge_deleted(session=session, now=now) == 2
    assert await entries.purge_deleted(session=session, now=now) == 0  # idempotent
    left = set((await session.execute(select(Entry.id))).scalars())
    assert left == {kept, recent}
    assert set((await session.execute(select(EntryTag.entry_id))).scalars()) == {kept, recent}
    assert await search_hits(session, "zanzibar") == {kept, recent}

    # Ten minutes later (a frozen clock, no sleeping) the recent one goes too.
    assert await entries.purge_deleted(session=session, now=now + timedelta(minutes=11)) == 1
    assert set((await session.execute(select(Entry.id))).scalars()) == {kept}
    assert await search_hits(session, "zanzibar") == {kept}


async def test_row39_the_purge_runs_on_a_schedule_on_the_job_queue(app, session, alice, client):
    """A periodic job of the worker (app/jobs.py), every five minutes; one round purges."""
    task = app.state.jobs.periodic["housekeeping"].s()
    at = datetime(2026, 12, 2, 10, 0)
    runs = [m for m in range(60) if task.validate_datetime(at.replace(minute=m))]
    assert runs == list(range(0, 60, 5))

    headers = await auth(client)
    entry_id = await new_entry(client, headers)
    await client.delete(f"/api/v1/entries/{entry_id}", headers=headers)
    await session.execute(
        update(Entry).values(deleted_at=utcnow() - entries.UNDO_WINDOW - timedelta(seconds=1))
    )
    await session.commit()

    counts = await jobs.housekeeping(app.state.jobs.context)
    assert counts["entries"] == 1
    assert (await jobs.housekeeping(app.state.jobs.context))["entries"] == 0  # idempotent
    assert (await session.execute(select(func.count()).select_from(Entry))).scalar_one() == 0


async def test_row39_a_restore_past_the_undo_window_is_refused_before_the_purge_runs(
    client, api, session, alice
):
    await sign_in(client, "alice@example.com")
    headers = await auth(api)
    entry_id = await new_entry(api, headers, title="Too late")
    assert (await post_form(client, f"/entries/{entry_id}/delete", {})).status_code == 303
    deleted_at = utcnow() - entries.UNDO_WINDOW - timedelta(seconds=5)
    await session.execute(update(Entry).where(Entry.id == entry_id).values(deleted_at=deleted_at))
    await session.commit()

    fragment = await post_form(client, f"/entries/{entry_id}/restore", {}, headers=HTMX)
    assert fragment.status_code == 410
    assert "can no longer be restored" in fragment.json()["message"]
    plain = await post_form(client, f"/entries/{entry_id}/restore", {})
    assert plain.status_code == 303
    assert "can no longer be restored" in (await client.get("/entries")).text
    assert (await stored(session, entry_id)).deleted_at is not None

    # Inside the window the undo still works.
    fresh = await new_entry(api, headers, title="Just now")
    await post_form(client, f"/entries/{fresh}/delete", {})
    assert (await post_form(client, f"/entries/{fresh}/restore", {})).status_code == 303
    assert (await stored(session, fresh)).deleted_at is None
