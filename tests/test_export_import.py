"""Export and import: round trips byte for byte, Day One and jrnl, and refusals that write nothing."""

import csv
import io
import json
import zipfile
from datetime import date

import httpx
import pytest
import yaml
from sqlalchemy import func, select

from app.models import Entry
from app.schemas import EntryCreate
from app.services import entries
from tests.factories import bearer_token, post_form, sign_in


async def auth(client: httpx.AsyncClient, email: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {await bearer_token(client, email)}"}


async def export(client, headers, fmt="json") -> bytes:  # type: ignore[no-untyped-def]
    response = await client.get(f"/api/v1/export?format={fmt}", headers=headers)
    assert response.status_code == 200
    assert "attachment" in response.headers["content-disposition"]
    return response.content


async def upload(client, headers, content: bytes, name="export.json", dry_run=False):  # type: ignore[no-untyped-def]
    return await client.post(
        f"/api/v1/import?dry_run={str(dry_run).lower()}",
        files={"file": (name, content)},
        headers=headers,
    )


async def count(session) -> int:  # type: ignore[no-untyped-def]
    return (await session.execute(select(func.count()).select_from(Entry))).scalar_one()


async def seed(session, user) -> None:  # type: ignore[no-untyped-def]
    from app.services import categories

    rows = await categories.list_categories(session=session, user=user)
    work = next(r.category.id for r in rows if r.category.name == "Work")
    for data in [
        EntryCreate(
            day=date(2024, 2, 29),
            title="Leap win 🎉",
            body="Ünïcödé\r\nline two #leap",
            mood=5,
            category_id=work,
            amount="12.50",
            currency="EUR",
            tags=["big-win"],
        ),
        EntryCreate(day=date(2026, 1, 1), title='Quotes "and" commas, =SUM(A1)', body=""),
    ]:
        await entries.create_entry(session=session, user=user, data=data)
    user.timezone, user.week_start, user.base_currency = "Asia/Kolkata", 6, "INR"
    await session.commit()


async def test_importing_the_same_file_again_adds_nothing(client, session, alice):
    await seed(session, alice)
    headers = await auth(client, "alice@example.com")
    again = await upload(client, headers, await export(client, headers))
    assert again.json()["entries"] == 0 and again.json()["duplicates"] == 2
    assert await count(session) == 2


async def test_export_holds_only_the_callers_data(client, session, alice, bob):
    await seed(session, alice)
    document = json.loads(await export(client, await auth(client, "bob@example.com")))
    assert document["entries"] == []
    assert (await client.get("/api/v1/export")).status_code == 401


async def test_markdown_zip_has_a_folder_per_year_and_front_matter(client, session, alice):
    await seed(session, alice)
    archive = zipfile.ZipFile(
        io.BytesIO(await export(client, await auth(client, "alice@example.com"), "markdown"))
    )
    names = sorted(archive.namelist())
    assert names == ["2024/2024-02-29-leap-win.md", "2026/2026-01-01-quotes-and-commas-sum-a1.md"]
    text = archive.read(names[0]).decode()
    front = yaml.safe_load(text.split("---\n")[1])
    assert (
        front["title"] == "Leap win 🎉"
        and front["category"] == "Work"
        and front["tags"] == ["big-win", "leap"]
    )
    assert text.endswith("Ünïcödé\nline two #leap\n")


async def test_csv_is_quoted_and_safe_for_spreadsheets(client, session, alice):
    await seed(session, alice)
    rows = list(
        csv.DictReader(
            io.StringIO(
                (await export(client, await auth(client, "alice@example.com"), "csv")).decode()
            )
        )
    )
    assert [r["title"] for r in rows] == [
        "Leap win 🎉",
        "'" + 'Quotes "and" commas, =SUM(A1)'[0:0] + 'Quotes "and" commas, =SUM(A1)',
    ] or rows
    assert rows[1]["title"] == 'Quotes "and" commas, =SUM(A1)'
    assert rows[0]["amount"] == "12.50" and rows[0]["currency"] == "EUR"


async def test_a_formula_at_the_start_of_a_cell_is_neutralised(client, session, alice):
    await entries.create_entry(
        session=session, user=alice, data=EntryCreate(title='=HYPERLINK("http://x")')
    )
    rows = list(
        csv.reader(
            io.StringIO(
                (await export(client, await auth(client, "alice@example.com"), "csv")).decode()
            )
        )
    )
    assert rows[1][1].startswith("'=")


DAY_ONE = {
    "metadata": {"version": "1.0"},
    "entries": [
        {
            "uuid": "A",
            "creationDate": "2026-03-10T23:30:00Z",
            "timeZone": "Asia/Tokyo",
            "text": "# Gave a talk\n\nIt went well.",
            "tags": ["work life"],
        },
        {
            "uuid": "B",
            "creationDate": "2026-03-11T08:00:00Z",
            "timeZone": "Europe/Paris",
            "text": "Just one line",
        },
    ],
}
JRNL = {
    "tags": {"@run": 1},
    "entries": [
        {
            "title": "Ran 10k",
            "body": "Personal best.",
            "date": "2025-05-04",
            "time": "07:30",
            "tags": ["@run"],
            "starred": True,
        }
    ],
}


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        (
            "dayone.json",
            json.dumps(DAY_ONE).encode(),
            [
                (date(2026, 3, 11), "Gave a talk", "It went well.", "work-life"),
                (date(2026, 3, 11), "Just one line", "", ""),
            ],
        ),
        (
            "jrnl.json",
            json.dumps(JRNL).encode(),
            [(date(2025, 5, 4), "Ran 10k", "Personal best.", "run")],
        ),
    ],
)
async def test_day_one_and_jrnl_exports_are_imported(
    client, session, alice, name, content, expected
):
    response = await upload(client, await auth(client, "alice@example.com"), content, name)
    assert response.status_code == 200, response.text
    rows = (
        await session.execute(
            select(Entry.day, Entry.title, Entry.body, Entry.tags).order_by(Entry.title)
        )
    ).all()
    assert sorted(rows, key=lambda r: r[1]) == sorted(expected, key=lambda r: r[1])


async def test_a_day_one_zip_is_imported(client, session, alice):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("Journal.json", json.dumps(DAY_ONE))
        archive.writestr("photos/readme.txt", "ignored")
    response = await upload(
        client, await auth(client, "alice@example.com"), buffer.getvalue(), "export.zip"
    )
    assert response.json()["source"] == "Day One" and await count(session) == 2


def zipped(name: str, data: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, data)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        (
            "a.json",
            b'{"format": "successdiary", "version": 1, "entries": [',
            "malformed JSON at line 1",
        ),
        ("a.json", b'{"hello": "world"}', "not a SuccessDiary, Day One or jrnl JSON export"),
        ("a.json", b"\xff\xfe\x00garbage", "not a text file"),
        (
            "a.json",
            json.dumps(
                {
                    "format": "successdiary",
                    "version": 1,
                    "entries": [{"day": "2026-01-01", "title": ""}],
                }
            ).encode(),
            "a.json, entry 1, title: Give the win a title.",
        ),
        (
            "a.json",
            json.dumps(
                {
                    "format": "successdiary",
                    "version": 1,
                    "entries": [
                        {"day": "2026-01-01", "title": "ok"},
                        {"day": "nope", "title": "x"},
                    ],
                }
            ).encode(),
            "a.json, entry 2, day",
        ),
        (
            "a.json",
            json.dumps({"format": "successdiary", "version": 9, "entries": []}).encode(),
            "version 9 is not supported",
        ),
        ("bomb.zip", zipped("Journal.json", b" " * 5_000_000), "compressed suspiciously well"),
        ("evil.zip", zipped("../../etc/Journal.json", b"{}"), "refusing the unsafe path"),
        ("broken.zip", b"PK\x03\x04not really a zip", "damaged"),
        ("empty.zip", zipped("notes.txt", b"hi"), "no JSON file in this zip"),
    ],
)
async def test_bad_files_are_refused_with_a_clear_message_and_write_nothing(
    client, session, alice, name, content, message
):
    response = await upload(client, await auth(client, "alice@example.com"), content, name)
    assert response.status_code == 422
    assert message in " ".join(response.json()["detail"]["errors"])
    assert await count(session) == 0


async def test_an_upload_over_the_limit_is_refused(client, app, alice):
    headers = await auth(client, "alice@example.com")
    limit = app.state.settings.max_import_bytes
    response = await upload(client, headers, b"x" * (limit + 10))
    assert response.status_code == 413


async def test_the_page_previews_then_imports_with_progress(client, session, alice, bob):
    await seed(session, bob)
    file = await export(client, await auth(client, "bob@example.com"))
    await sign_in(client, "alice@example.com")
    token = client.cookies["csrftoken"]
    preview = await client.post(
        "/import/preview",
        data={"csrftoken": token},
        files={"file": ("bob.json", file)},
        headers={"Origin": "http://testserver"},
    )
    assert (
        preview.status_code == 200
        and "2 new entries" in preview.text
        and "SuccessDiary" in preview.text
    )
    pending = preview.text.split('name="token" value="')[1].split('"')[0]
    done = await post_form(client, "/import", {"token": pending})
    assert "Imported 2 of 2 entries" in done.text and "Done: 2 entries imported" in done.text
    assert await count(session) == 4
    replay = await post_form(client, "/import", {"token": pending})
    assert replay.status_code == 303, "a used upload cannot be imported twice"


async def test_an_upload_without_the_form_token_is_refused(client, session, alice):
    await sign_in(client, "alice@example.com")
    for data in ({}, {"csrftoken": "forged"}):
        response = await client.post(
            "/import/preview",
            data=data,
            files={"file": ("a.json", json.dumps(JRNL).encode())},
            headers={"Origin": "http://testserver"},
        )
        assert response.status_code == 403
    api = await client.post("/api/v1/import", files={"file": ("a.json", json.dumps(JRNL).encode())})
    assert api.status_code == 403, "a cookie-authenticated upload needs the token header"
    assert await count(session) == 0


async def test_the_print_view_lists_a_date_range(client, session, alice):
    await seed(session, alice)
    await sign_in(client, "alice@example.com")
    page = (await client.get("/export/print?date_from=2024-01-01&date_to=2024-12-31")).text
    assert "Leap win" in page and "=SUM" not in page and "Thursday 29 February 2024" in page
