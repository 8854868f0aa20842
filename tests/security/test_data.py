"""SECURITY.md row 26: export, import into a fresh account, export again: byte-identical
(Unicode, CRLF, emoji, time zones), on SQLite and PostgreSQL alike."""

import json
import uuid
from datetime import date

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.factories import make_user
from tests.test_export_import import auth, export, seed, upload

ENTRY = st.fixed_dictionaries(
    {
        "day": st.dates(date(1950, 1, 1), date(2100, 12, 31)).map(date.isoformat),
        "title": st.text(
            st.characters(blacklist_categories=["Cs", "Cc", "Co"]), min_size=1, max_size=200
        ).filter(str.strip),
        "body": st.lists(
            st.text(st.characters(blacklist_categories=["Cs", "Co", "Cc"]), max_size=80)
            | st.sampled_from(["\r\n", "\n", "\t", "🎉", "✅", "👍🏽", "#tag", "**bold**"]),
            max_size=20,
        ).map("".join),
        "mood": st.none() | st.integers(1, 5),
    }
)


async def test_row26_export_import_into_a_fresh_account_and_export_again_is_byte_identical(
    client, session, alice
):
    await seed(session, alice)
    first = await export(client, await auth(client, "alice@example.com"))
    await make_user(session, "carol@example.com")
    carol = await auth(client, "carol@example.com")

    preview = await upload(client, carol, first, dry_run=True)
    assert preview.json() == {
        "source": "SuccessDiary",
        "entries": 2,
        "duplicates": 0,
        "new_categories": [],
        "merged_categories": [],
        "imported": False,
    }
    assert (await upload(client, carol, first)).json()["imported"] is True
    second = await export(client, carol)

    assert second == first
    document = json.loads(first)
    assert document["version"] == 1 and document["preferences"]["timezone"] == "Asia/Kolkata"
    assert document["entries"][0]["body"] == "Ünïcödé\nline two #leap", "CRLF is stored as LF"


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    records=st.lists(ENTRY, max_size=6),
    zone=st.sampled_from(["UTC", "Pacific/Kiritimati", "America/St_Johns", "Asia/Kathmandu"]),
)
async def test_row26_round_trip_is_exact_for_generated_entries(client, session, records, zone):
    email = f"gen-{uuid.uuid4().hex}@example.com"
    owner = await make_user(session, email)
    owner.timezone = zone
    await session.commit()
    headers = await auth(client, email)
    for record in records:
        assert (
            await client.post("/api/v1/entries", json=record, headers=headers)
        ).status_code == 201
    first = await export(client, headers)
    fresh = f"fresh-{email}"
    await make_user(session, fresh)
    fresh_headers = await auth(client, fresh)
    assert (await upload(client, fresh_headers, first)).status_code == 200
    second = await export(client, fresh_headers)
    assert second.decode().splitlines() == first.decode().splitlines()
    assert second == first
