"""Photos leave and come back: the archive export (JSON + media/) round trip byte for byte,
the Markdown zip's relative links, the CSV's file names, and Day One's photos/."""

import contextlib
import csv
import hashlib
import io
import json
import zipfile
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.factories import bearer_token
from tests.photos_support import has_exif, jpeg, png

pytestmark = pytest.mark.usefixtures("media")


@contextlib.asynccontextmanager
async def signed_in(app, email: str) -> AsyncIterator[httpx.AsyncClient]:  # type: ignore[no-untyped-def]
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        c.headers["Authorization"] = f"Bearer {await bearer_token(c, email)}"
        yield c


async def diary_with_photos(client: httpx.AsyncClient) -> None:
    first = (
        await client.post("/api/v1/entries", json={"title": "Marathon", "day": "2026-11-01"})
    ).json()
    second = (
        await client.post("/api/v1/entries", json={"title": "Exam", "day": "2026-11-02"})
    ).json()
    files = [(first["id"], jpeg(80, 60), "image/jpeg"), (first["id"], png(), "image/png")]
    files.append((second["id"], png(30, 50), "image/png"))
    for entry_id, data, mime in files:
        answer = await client.post(
            f"/api/v1/entries/{entry_id}/photos",
            files={"file": ("x", data, mime)},
            data={"alt": f"alt {entry_id}"},
        )
        assert answer.status_code == 201, answer.text


async def test_the_archive_round_trip_is_byte_identical(app, alice, bob):
    async with signed_in(app, "alice@example.com") as a:
        await diary_with_photos(a)
        archive = (await a.get("/api/v1/export?format=archive")).content
        originals = {
            p["url"]: (await a.get(p["url"])).content
            for e in (await a.get("/api/v1/entries")).json()["items"]
            for p in e["photos"]
        }
    names = zipfile.ZipFile(io.BytesIO(archive)).namelist()
    assert names[0] == "successdiary.json"
    assert sum(n.startswith("media/") for n in names) == 3
    async with signed_in(app, "bob@example.com") as b:
        done = await b.post(
            "/api/v1/import", files={"file": ("export.zip", archive, "application/zip")}
        )
        assert done.status_code == 200, done.text
        items = (await b.get("/api/v1/entries")).json()["items"]
        restored = [(await b.get(p["url"])).content for e in items for p in e["photos"]]
        assert sorted(hashlib.sha256(x).hexdigest() for x in restored) == sorted(
            hashlib.sha256(x).hexdigest() for x in originals.values()
        )
        assert all(p["alt"].startswith("alt") for e in items for p in e["photos"])
        again = (await b.get("/api/v1/export?format=archive")).content
    assert again == archive


async def test_markdown_links_its_photos_relatively_and_csv_lists_their_names(app, alice):
    async with signed_in(app, "alice@example.com") as a:
        await diary_with_photos(a)
        markdown = zipfile.ZipFile(
            io.BytesIO((await a.get("/api/v1/export?format=markdown")).content)
        )
        table = (await a.get("/api/v1/export?format=csv")).text
        document = json.loads((await a.get("/api/v1/export?format=json")).content)
    media = [n for n in markdown.namelist() if n.startswith("media/")]
    assert len(media) == 3
    page = markdown.read(next(n for n in markdown.namelist() if "marathon" in n)).decode()
    linked = [line for line in page.splitlines() if line.startswith("![")]
    assert len(linked) == 2 and all("](../media/" in line for line in linked)
    for line in linked:
        assert line.split("](../", 1)[1].rstrip(")") in media
    rows = list(csv.DictReader(io.StringIO(table)))
    assert [len(r["photos"].split()) for r in rows] == [2, 1]
    assert all(f"media/{n}" in media for r in rows for n in r["photos"].split())
    assert [len(e.get("photos", [])) for e in document["entries"]] == [2, 1]


async def test_a_day_one_zip_brings_its_photos_cleaned(app, alice):
    photo = jpeg(90, 70)
    md5 = hashlib.md5(photo).hexdigest()  # noqa: S324 - Day One names files so
    journal = {
        "metadata": {"version": "1.0"},
        "entries": [
            {
                "creationDate": "2026-10-05T08:00:00Z",
                "timeZone": "Europe/London",
                "text": "Finished the triathlon\n![](dayone-moment://ABC123)\nWhat a day.",
                "photos": [{"identifier": "ABC123", "md5": md5, "type": "jpeg"}],
            }
        ],
    }
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("Journal.json", json.dumps(journal))
        z.writestr(f"photos/{md5}.jpeg", photo)
    async with signed_in(app, "alice@example.com") as a:
        done = await a.post(
            "/api/v1/import", files={"file": ("dayone.zip", out.getvalue(), "application/zip")}
        )
        assert done.status_code == 200, done.text
        entry = (await a.get("/api/v1/entries")).json()["items"][0]
        assert entry["title"] == "Finished the triathlon"
        assert "dayone-moment" not in entry["body"]
        assert len(entry["photos"]) == 1
        served = (await a.get(entry["photos"][0]["url"])).content
    assert not has_exif(served) and served != photo
