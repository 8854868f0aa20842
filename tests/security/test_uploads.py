"""Row 43: uploads. Photos are decoded and re-encoded, EXIF and GPS gone; SVG, HTML named
.jpg and truncated files 415; over the limit 413; pixel bombs refused; served only to the
owner with nosniff and private caching; 0 orphan files after deletion."""

import io

import httpx
import pytest
from PIL import Image
from sqlalchemy import func, select

from app.models import Photo
from app.services.photos import process
from tests.factories import bearer_token
from tests.photos_support import HTML, SVG, bomb, has_exif, jpeg, png, truncated

pytestmark = pytest.mark.usefixtures("media")


async def entry(client: httpx.AsyncClient) -> int:
    response = await client.post("/api/v1/entries", json={"title": "Got the certificate"})
    assert response.status_code == 201
    return int(response.json()["id"])


async def send(client, entry_id, data, name="photo.jpg", mime="image/jpeg"):  # type: ignore[no-untyped-def]
    return await client.post(
        f"/api/v1/entries/{entry_id}/photos", files={"file": (name, data, mime)}
    )


async def photo_rows(session) -> int:  # type: ignore[no-untyped-def]
    return int(await session.scalar(select(func.count()).select_from(Photo)) or 0)


@pytest.mark.parametrize(
    ("data", "name", "mime"),
    [
        (SVG, "cat.svg", "image/svg+xml"),
        (SVG, "cat.jpg", "image/jpeg"),
        (HTML, "page.jpg", "image/jpeg"),
        (b"GIF89a" + b"\0" * 40, "x.gif", "image/gif"),
        (b"", "empty.jpg", "image/jpeg"),
        ("truncated", "half.jpg", "image/jpeg"),
    ],
)
async def test_row43_what_is_not_an_allowed_image_gets_415_and_nothing_is_stored(
    as_alice, media, session, data, name, mime
):
    entry_id = await entry(as_alice)
    body = truncated() if data == "truncated" else data
    response = await send(as_alice, entry_id, body, name, mime)
    assert response.status_code == 415, response.text
    assert response.json()["detail"] == "UNSUPPORTED_MEDIA"
    assert response.json()["message"]
    assert list(media.keys()) == []
    assert await photo_rows(session) == 0


async def test_row43_a_pixel_bomb_is_refused_before_it_is_decoded(as_alice, media, session):
    entry_id = await entry(as_alice)
    data = bomb()
    assert len(data) < 100_000  # small on the wire, 100 megapixels decoded
    response = await send(as_alice, entry_id, data, "bomb.png", "image/png")
    assert response.status_code == 413
    assert response.json()["detail"] == "TOO_MANY_PIXELS"
    assert list(media.keys()) == [] and await photo_rows(session) == 0


async def test_row43_over_the_size_limit_is_413_while_reading(as_alice, app, media, session):
    entry_id = await entry(as_alice)
    limit = app.state.settings.media_max_bytes
    app.state.settings.media_max_bytes = 5_000
    try:
        response = await send(as_alice, entry_id, jpeg(600, 400) + b"\0" * 6000)
    finally:
        app.state.settings.media_max_bytes = limit
    assert response.status_code == 413
    assert response.json()["detail"] == "PHOTO_TOO_LARGE"
    # A body far past the limit stops at the door (BodyLimit), before any route runs.
    huge = await as_alice.post(
        f"/api/v1/entries/{entry_id}/photos",
        content=b"x" * (limit + 100_000),
        headers={"Content-Type": "multipart/form-data; boundary=xyz"},
    )
    assert huge.status_code == 413
    assert list(media.keys()) == [] and await photo_rows(session) == 0


async def test_row43_stored_bytes_are_re_encoded_without_exif_or_gps(as_alice, media):
    entry_id = await entry(as_alice)
    sent = jpeg(120, 90)
    assert has_exif(sent)
    body = (await send(as_alice, entry_id, sent)).json()
    served = (await as_alice.get(body["url"])).content
    assert served != sent and not has_exif(served)
    assert Image.open(io.BytesIO(served)).getexif().get_ifd(0x8825) == {}
    stored = [media.get(k) for k in list(media.keys())]
    assert all(not has_exif(b) for b in stored)
    assert sent not in stored
    # PNG's eXIf chunk goes too.
    with_exif = io.BytesIO()
    exif = Image.Exif()
    exif[0x010F] = "SpyCam"
    Image.new("RGB", (20, 20)).save(with_exif, "PNG", exif=exif.tobytes())
    assert not has_exif(process(with_exif.getvalue(), 50_000_000).data)


async def test_row43_served_only_to_the_owner_with_nosniff_and_private_caching(as_alice, app, bob):
    entry_id = await entry(as_alice)
    body = (await send(as_alice, entry_id, png(), "p.png", "image/png")).json()
    for url in (body["url"], body["thumbnail_url"]):
        answer = await as_alice.get(url)
        assert answer.status_code == 200
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["cache-control"].startswith("private")
        assert answer.headers["content-disposition"].startswith('inline; filename="')
        assert answer.headers["content-type"] in ("image/png", "image/webp")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as other:
        anonymous = await other.get(body["url"])  # no session: the sign-in page, no bytes
        assert anonymous.status_code == 303 and not anonymous.content.startswith(b"\x89PNG")
        other.headers["Authorization"] = f"Bearer {await bearer_token(other, 'bob@example.com')}"
        assert (await other.get(body["url"])).status_code == 404
        assert (await other.get(body["thumbnail_url"])).status_code == 404


async def test_row43_no_orphan_files_after_deleting_photos_wins_and_the_account(
    as_alice, media, session
):
    entry_id = await entry(as_alice)
    first = (await send(as_alice, entry_id, png(), "a.png", "image/png")).json()
    await send(as_alice, entry_id, png(), "b.png", "image/png")
    assert (await as_alice.delete(f"/api/v1/photos/{first['id']}")).status_code == 204
    assert len(list(media.keys())) == 2
    deleted = await as_alice.request(
        "DELETE", "/api/v1/users/me", json={"password": "correct horse battery staple"}
    )
    assert deleted.status_code == 204
    assert list(media.keys()) == []


def test_row43_an_archive_file_is_kept_only_when_it_is_as_we_store_it():
    from app.services.photos import PhotoProblem, verify_kept

    ours = process(jpeg(60, 40), 50_000_000).data
    assert verify_kept(ours, 50_000_000).data == ours  # byte for byte: the archive round trip
    for foreign in (
        jpeg(60, 40),  # EXIF and GPS
        ours + b"<html><script>alert(1)</script></html>",  # something riding along
        SVG,
    ):
        try:
            kept = verify_kept(foreign, 50_000_000).data
        except PhotoProblem:  # refused outright
            continue
        assert kept != foreign and not has_exif(kept)


async def test_row43_the_larger_photo_limit_is_for_multipart_bodies_only(client, alice, app):
    from tests.factories import csrf_token, sign_in

    await sign_in(client, "alice@example.com")
    default = app.state.settings.max_body_bytes
    form = await client.post(
        "/entries",
        content=b"title=" + b"a" * (default + 10),
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Origin": "http://testserver",
            "x-csrftoken": await csrf_token(client),
        },
    )
    assert form.status_code == 413  # an urlencoded form keeps the ordinary limit
