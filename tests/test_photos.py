"""Photos on wins through the API and the pages, with a local folder and with moto's S3:
upload, thumbnail, owner-only serving, EXIF gone, order and alt text, limits, deletion."""

import io
from datetime import timedelta

import httpx
import pytest
from PIL import Image
from sqlalchemy import select

from app.models import Entry, Photo
from app.models.base import utcnow
from app.services import photos
from app.services.entries import purge_deleted
from tests.factories import csrf_token, sign_in
from tests.photos_support import has_exif, jpeg, png, webp
from tests.test_query_budget import statements  # noqa: F401 (fixture)

pytestmark = pytest.mark.usefixtures("media")


async def new_entry(client: httpx.AsyncClient, title: str = "Finished the marathon") -> int:
    response = await client.post("/api/v1/entries", json={"title": title})
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


async def upload(
    client: httpx.AsyncClient,
    entry_id: int,
    data: bytes,
    name: str = "photo.jpg",
    mime: str = "image/jpeg",
    **form: str,
) -> httpx.Response:
    return await client.post(
        f"/api/v1/entries/{entry_id}/photos", files={"file": (name, data, mime)}, data=form
    )


def stored_keys(media) -> list[str]:  # type: ignore[no-untyped-def]
    return sorted(media.keys())


async def test_upload_answers_201_with_the_photo_and_serves_it_without_exif(as_alice, media):
    entry_id = await new_entry(as_alice)
    sent = jpeg(64, 48, orientation=6)  # rotated 90 degrees: stored 48 x 64
    response = await upload(as_alice, entry_id, sent)
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) >= {
        "id",
        "url",
        "thumbnail_url",
        "width",
        "height",
        "content_type",
        "bytes",
        "alt",
    }
    assert (body["width"], body["height"]) == (48, 64)
    assert body["content_type"] == "image/jpeg"
    assert body["alt"] == "Finished the marathon"  # the win's title by default
    served = await as_alice.get(body["url"])
    assert served.status_code == 200
    assert served.headers["content-type"] == "image/jpeg"
    assert served.headers["x-content-type-options"] == "nosniff"
    assert served.headers["cache-control"].startswith("private")
    assert "immutable" in served.headers["cache-control"]
    assert served.headers["content-disposition"].startswith("inline; filename=")
    assert served.content != sent  # re-encoded, never stored as sent
    assert len(served.content) == body["bytes"]
    assert not has_exif(served.content)
    assert b"SpyCam" not in served.content
    image = Image.open(io.BytesIO(served.content))
    assert image.size == (48, 64)
    # The rotation was applied: the blue half is now on top.
    top, bottom = image.getpixel((24, 5)), image.getpixel((24, 58))
    assert top[2] > 150 and bottom[0] > 150
    thumb = await as_alice.get(body["thumbnail_url"])
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/webp"
    assert Image.open(io.BytesIO(thumb.content)).format == "WEBP"
    assert not has_exif(thumb.content)
    assert len(stored_keys(media)) == 2  # the image and its thumbnail


async def test_png_and_webp_are_kept_as_their_kind_and_large_ones_get_a_small_thumbnail(as_alice):
    entry_id = await new_entry(as_alice)
    for data, kind in ((png(), "image/png"), (webp(), "image/webp")):
        response = await upload(as_alice, entry_id, data, "x", "application/octet-stream")
        assert response.status_code == 201, response.text
        assert response.json()["content_type"] == kind
    big = (await upload(as_alice, entry_id, jpeg(1600, 1200, gps=False))).json()
    thumb = await as_alice.get(big["thumbnail_url"])
    assert max(Image.open(io.BytesIO(thumb.content)).size) == photos.THUMB_SIDE


async def test_the_entry_lists_its_photos_in_order_and_patch_moves_and_describes(as_alice):
    entry_id = await new_entry(as_alice)
    ids = [(await upload(as_alice, entry_id, png())).json()["id"] for _ in range(3)]
    listed = (await as_alice.get(f"/api/v1/entries/{entry_id}/photos")).json()
    assert [p["id"] for p in listed] == ids
    moved = await as_alice.patch(f"/api/v1/photos/{ids[2]}", json={"position": 0, "alt": "Medal"})
    assert moved.status_code == 200 and moved.json()["alt"] == "Medal"
    entry = (await as_alice.get(f"/api/v1/entries/{entry_id}")).json()
    assert [p["id"] for p in entry["photos"]] == [ids[2], ids[0], ids[1]]
    assert [p["position"] for p in entry["photos"]] == [0, 1, 2]
    page = (await as_alice.get("/api/v1/entries")).json()
    assert [p["id"] for p in page["items"][0]["photos"]] == [ids[2], ids[0], ids[1]]


async def test_only_the_owner_sees_or_changes_a_photo(as_alice, as_bob, client):
    entry_id = await new_entry(as_alice)
    body = (await upload(as_alice, entry_id, png())).json()
    for url in (body["url"], body["thumbnail_url"]):
        assert (await as_bob.get(url)).status_code == 404
    assert (await as_bob.get(f"/api/v1/entries/{entry_id}/photos")).status_code == 404
    assert (
        await as_bob.patch(f"/api/v1/photos/{body['id']}", json={"alt": "x"})
    ).status_code == 404
    assert (await as_bob.delete(f"/api/v1/photos/{body['id']}")).status_code == 404
    assert (await upload(as_bob, entry_id, png())).status_code == 404
    anonymous = httpx.AsyncClient(transport=client._transport, base_url="http://testserver")
    async with anonymous:
        answer = await anonymous.get(body["url"])
        assert answer.status_code == 303 and answer.headers["location"].startswith("/login")
    # A URL whose hash is not the photo's names nothing.
    wrong = body["url"].rsplit("/", 1)[0] + "/" + "0" * 20 + ".png"
    assert (await as_alice.get(wrong)).status_code == 404


async def test_ten_photos_per_win_then_409(as_alice, media):
    entry_id = await new_entry(as_alice)
    for _ in range(photos.MAX_PER_ENTRY):
        assert (await upload(as_alice, entry_id, png(8, 8))).status_code == 201
    eleventh = await upload(as_alice, entry_id, png(8, 8))
    assert eleventh.status_code == 409 and eleventh.json()["detail"] == "TOO_MANY_PHOTOS"
    assert len(stored_keys(media)) == 2 * photos.MAX_PER_ENTRY


async def test_the_quota_refuses_with_413_and_stores_nothing(as_alice, app, media):
    entry_id = await new_entry(as_alice)
    first = await upload(as_alice, entry_id, png())
    assert first.status_code == 201
    quota = app.state.settings.media_quota_bytes
    app.state.settings.media_quota_bytes = 10
    try:
        refused = await upload(as_alice, entry_id, png())
    finally:
        app.state.settings.media_quota_bytes = quota
    assert refused.status_code == 413 and refused.json()["detail"] == "MEDIA_QUOTA_EXCEEDED"
    assert len(stored_keys(media)) == 2


async def test_deleting_a_photo_removes_its_files(as_alice, media, session):
    entry_id = await new_entry(as_alice)
    keep = (await upload(as_alice, entry_id, png())).json()
    gone = (await upload(as_alice, entry_id, png())).json()
    assert (await as_alice.delete(f"/api/v1/photos/{gone['id']}")).status_code == 204
    assert (await as_alice.get(gone["url"])).status_code == 404
    assert len(stored_keys(media)) == 2
    entry = await session.get(Entry, entry_id)
    assert entry.photo_count == 1
    assert (await as_alice.get(keep["url"])).status_code == 200


async def test_a_purged_win_and_a_deleted_account_leave_no_files(as_alice, app, media, session):
    entry_id = await new_entry(as_alice)
    await upload(as_alice, entry_id, png())
    other = await new_entry(as_alice, "Second")
    await upload(as_alice, other, png())
    assert (await as_alice.delete(f"/api/v1/entries/{entry_id}")).status_code == 204
    purged = await purge_deleted(session=session, now=utcnow() + timedelta(hours=1), media=media)
    assert purged == 1
    assert len(stored_keys(media)) == 2  # only the second win's
    deleted = await as_alice.request(
        "DELETE", "/api/v1/users/me", json={"password": "correct horse battery staple"}
    )
    assert deleted.status_code == 204, deleted.text
    assert stored_keys(media) == []
    assert (await session.execute(select(Photo))).first() is None


async def test_the_pages_add_describe_move_and_remove_photos_without_javascript(
    client, alice, media, session
):
    await sign_in(client, "alice@example.com")
    token = await csrf_token(client)
    created = await client.post(
        "/entries",
        data={"csrftoken": token, "title": "Passed the exam", "day": "2026-11-20"},
        headers={"Origin": "http://testserver"},
    )
    assert created.status_code == 303
    entry = (await session.execute(select(Entry))).scalar_one()
    form = await client.post(
        f"/entries/{entry.id}/photos",
        data={"csrftoken": token},
        files=[("file", ("a.png", png(), "image/png")), ("file", ("b.jpg", jpeg(), "image/jpeg"))],
        headers={"Origin": "http://testserver"},
    )
    assert form.status_code == 303, form.text
    page = await client.get(f"/entries/{entry.id}")
    assert page.text.count('loading="lazy"') >= 2
    assert 'alt="Passed the exam"' in page.text
    assert 'type="file"' in page.text and 'accept="image/*"' in page.text
    listed = await client.get("/entries")
    assert "-thumb.webp" in listed.text and 'width="' in listed.text
    shown = list((await session.execute(select(Photo).order_by(Photo.position))).scalars())
    await session.commit()
    headers = {"Origin": "http://testserver"}
    moved = await client.post(
        f"/photos/{shown[1].id}/move", data={"csrftoken": token, "position": "0"}, headers=headers
    )
    assert moved.status_code == 303
    described = await client.post(
        f"/photos/{shown[1].id}/alt",
        data={"csrftoken": token, "alt": "The certificate"},
        headers=headers,
    )
    assert described.status_code == 303
    assert 'alt="The certificate"' in (await client.get(f"/entries/{entry.id}")).text
    removed = await client.post(
        f"/photos/{shown[0].id}/delete", data={"csrftoken": token}, headers=headers
    )
    assert removed.status_code == 303
    assert len(stored_keys(media)) == 2


async def test_the_plain_photo_form_needs_its_csrf_token(client, alice, session):
    await sign_in(client, "alice@example.com")
    created = await client.post(
        "/entries",
        data={"csrftoken": await csrf_token(client), "title": "Win"},
        headers={"Origin": "http://testserver"},
    )
    assert created.status_code == 303
    entry = (await session.execute(select(Entry))).scalar_one()
    forged = await client.post(
        f"/entries/{entry.id}/photos",
        data={"csrftoken": "forged"},
        files={"file": ("a.png", png(), "image/png")},
        headers={"Origin": "http://testserver"},
    )
    assert forged.status_code == 403


async def test_the_list_with_20_wins_of_3_photos_costs_one_query_more(
    app,
    client,
    alice,
    session,
    media,
    statements,  # noqa: F811
):
    from datetime import date

    from app.schemas import EntryCreate
    from app.services import entries
    from tests.conftest import settle
    from tests.test_query_budget import BUDGET

    for i in range(20):
        data = EntryCreate(title=f"Win {i}", day=date(2026, 3, 1) + timedelta(days=i))
        entry_id = (await entries.create_entry(session=session, user=alice, data=data)).id
        for _ in range(3):
            entry = await session.get(Entry, entry_id)
            await photos.add_photo(
                session=session,
                user=alice,
                entry=entry,
                data=png(8, 8),
                filename="x.png",
                alt=None,
                storage=media,
                settings=app.state.settings,
            )
    await sign_in(client, "alice@example.com")
    await settle(app)
    statements.clear()
    page = await client.get("/entries")
    assert page.status_code == 200
    assert len(statements) <= BUDGET + 1, [s for s, _ in statements]
    # 60 thumbnails, each lazy with its size set, each a request of its own.
    assert page.text.count('loading="lazy"') == 60
    assert page.text.count("-thumb.webp") == 60


async def test_the_new_win_page_takes_photos_in_its_plain_form(client, alice, media, session):
    await sign_in(client, "alice@example.com")
    page = await client.get("/entries/new")
    assert 'enctype="multipart/form-data"' in page.text
    assert 'type="file" name="file" accept="image/*" multiple' in page.text
    token = await csrf_token(client)
    headers = {"Origin": "http://testserver"}
    saved = await client.post(
        "/entries",
        data={"csrftoken": token, "title": "Climbed Snowdon", "day": "2026-11-21"},
        files=[
            ("file", ("top.jpg", jpeg(), "image/jpeg")),
            ("file", ("x.svg", b"<svg/>", "image/svg+xml")),
        ],
        headers=headers,
    )
    assert saved.status_code == 303, saved.text
    entry = (await session.execute(select(Entry))).scalar_one()
    assert saved.headers["location"].endswith(f"/entries/{entry.id}#photos")
    shown = await client.get(f"/entries/{entry.id}")
    assert shown.text.count('alt="Climbed Snowdon"') >= 1
    assert "x.svg: This file is not" in shown.text  # the refused one is named
    assert len(stored_keys(media)) == 2
    forged = await client.post(
        "/entries",
        data={"csrftoken": "forged", "title": "Nope"},
        files={"file": ("a.png", png(), "image/png")},
        headers=headers,
    )
    assert forged.status_code == 403
    # The quick-add form on the list stays a plain urlencoded form.
    assert (
        'enctype="multipart/form-data"'
        not in (await client.get("/entries")).text.split('id="quick-add"')[1].split(">")[0]
    )


async def test_a_heic_photo_is_stored_as_jpeg(as_alice):
    pillow_heif = pytest.importorskip("pillow_heif")
    pillow_heif.register_heif_opener()
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (10, 200, 10)).save(out, "HEIF")
    entry_id = await new_entry(as_alice)
    response = await upload(as_alice, entry_id, out.getvalue(), "IMG_0001.HEIC", "image/heic")
    assert response.status_code == 201, response.text
    assert response.json()["content_type"] == "image/jpeg"
    served = await as_alice.get(response.json()["url"])
    assert Image.open(io.BytesIO(served.content)).format == "JPEG"


async def test_review_and_print_views_show_the_thumbnails(client, alice, media, session, app):
    from datetime import date

    from app.schemas import EntryCreate
    from app.services import entries

    data = EntryCreate(title="Spoke at the meetup", day=date(2026, 11, 20))
    entry_id = (await entries.create_entry(session=session, user=alice, data=data)).id
    entry = await session.get(Entry, entry_id)
    photo = await photos.add_photo(
        session=session,
        user=alice,
        entry=entry,
        data=png(40, 20),
        filename="talk.png",
        alt="On stage",
        storage=media,
        settings=app.state.settings,
    )
    await sign_in(client, "alice@example.com")
    review = await client.get("/review?period=month&date=2026-11-20")
    assert review.status_code == 200
    assert photo.thumbnail_url in review.text and 'alt="On stage"' in review.text
    printed = await client.get("/export/print?date_from=2026-11-01&date_to=2026-11-30")
    assert printed.status_code == 200
    assert photo.thumbnail_url in printed.text
    assert 'width="96" height="48"' in printed.text and 'loading="lazy"' in printed.text


async def test_media_check_finds_orphans_and_missing_files_in_the_folder_and_the_bucket(
    as_alice, media, session
):
    entry_id = await new_entry(as_alice)
    await upload(as_alice, entry_id, png())
    orphan = "00000000-0000-0000-0000-000000000000/AAAAAAAAAAAAAAAAAAAAAA.png"
    media.put(orphan, b"left by a crash", "image/png")
    known = await photos.all_keys(session)
    dry = photos.media_check_sync(media, known, remove=False)
    assert dry.orphans == [orphan] and dry.missing == [] and dry.files == 3
    photos.media_check_sync(media, known, remove=True)
    assert orphan not in set(media.keys())
    row = (await session.execute(select(Photo))).scalar_one()
    media.delete(row.thumb_key)
    assert photos.media_check_sync(media, known, remove=True).missing == [row.thumb_key]


def test_a_palette_png_keeps_its_transparent_colour():
    image = Image.new("P", (20, 20), 0)
    image.putpalette([255, 0, 0, 0, 255, 0])
    out = io.BytesIO()
    image.save(out, "PNG", transparency=0)
    stored = Image.open(io.BytesIO(photos.process(out.getvalue(), 50_000_000).data))
    assert stored.info.get("transparency") == 0
