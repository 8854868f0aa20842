"""Photos on wins: decode, clean, re-encode, store, list, reorder, remove.

What a user sends is never stored as sent. Pillow decodes it (JPEG, PNG, WebP, and HEIC
when pillow-heif is installed), applies the EXIF orientation, and encodes fresh pixels with
no metadata at all: EXIF (GPS above all), XMP and comments are gone, only the colour
profile stays. Anything that is not one of those images (an SVG, HTML named .jpg, a
truncated file) is refused with 415, an image with more pixels than MEDIA_MAX_PIXELS (a
decompression bomb) with 413, and nothing is stored. Decoding runs in a worker thread, so
the event loop goes on serving meanwhile.

Files are written before their row, and removed after it: a crash leaves at worst an orphan
file (`successdiary media check` removes those), never a row without its file.
"""

import hashlib
import io
import secrets
import warnings
from collections.abc import Iterable
from dataclasses import dataclass

import anyio.to_thread
from PIL import Image, ImageOps, UnidentifiedImageError
from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.config import Settings
from app.models import Entry, Photo, User
from app.schemas import PhotoRead
from app.services import Problem
from app.storage import MissingFile, Storage

__all__ = ["Photo", "PhotoProblem"]

try:  # HEIC (iPhone photos), when its wheel installed cleanly
    from pillow_heif import register_heif_opener

    register_heif_opener()
    HEIC = True
except ImportError:  # pragma: no cover - depends on the machine
    HEIC = False

MAX_PER_ENTRY = 10
ALT_MAX = 500
THUMB_SIDE = 480
FORMATS = ("JPEG", "PNG", "WEBP", *(("HEIF",) if HEIC else ()))
# Stored as: the same kind, except HEIC, which browsers do not show, as JPEG.
OUTPUT = {"JPEG": "JPEG", "PNG": "PNG", "WEBP": "WEBP", "HEIF": "JPEG"}
CONTENT_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
HEIC_BRANDS = (b"ftypheic", b"ftypheix", b"ftyphevc", b"ftypmif1", b"ftypmsf1", b"ftypavif")
KINDS = "a JPEG, PNG or WebP image" + (" (or a HEIC photo)" if HEIC else "")


class PhotoProblem(Problem):
    """A photo that cannot be stored: a code, a sentence for people, and the status it is
    answered with (415 not an image we take, 413 too large, 409 too many)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__("file", message)
        self.status = status
        self.code = code


@dataclass(frozen=True)
class Processed:
    data: bytes
    content_type: str
    width: int
    height: int
    thumb: bytes
    thumb_width: int
    thumb_height: int

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def total(self) -> int:
        return len(self.data) + len(self.thumb)


def unsupported(message: str | None = None) -> PhotoProblem:
    return PhotoProblem(
        415, "UNSUPPORTED_MEDIA", message or f"This file is not {KINDS}, or it is damaged."
    )


def too_large(max_bytes: int) -> PhotoProblem:
    return PhotoProblem(
        413, "PHOTO_TOO_LARGE", f"A photo may be at most {max_bytes / 1_000_000:g} MB."
    )


def _open(data: bytes, max_pixels: int) -> Image.Image:
    """The decoded image, checked: an allowed kind, not too many pixels, not truncated."""
    if not HEIC and data[4:12] in HEIC_BRANDS:
        raise unsupported(
            "HEIC photos cannot be read on this server (pillow-heif is not installed): "
            "send it as JPEG (on an iPhone: Settings > Camera > Formats > Most Compatible)."
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=FORMATS)
            if image.width * image.height > max_pixels:
                raise _bomb(max_pixels)
            image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _bomb(max_pixels) from None
    except UnidentifiedImageError:
        raise unsupported() from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:  # truncated or broken
        raise unsupported(f"This image could not be read to its end ({exc}).") from None
    return image


def _bomb(max_pixels: int) -> PhotoProblem:
    return PhotoProblem(
        413,
        "TOO_MANY_PIXELS",
        f"This image has more than {max_pixels / 1_000_000:g} megapixels: it is refused.",
    )


def _encode(image: Image.Image, kind: str, icc: bytes | None) -> bytes:
    out = io.BytesIO()
    extra = {"icc_profile": icc} if icc else {}
    if kind == "JPEG":
        if image.mode not in ("RGB", "L"):
            image = image.convert("RGB")
        image.save(out, "JPEG", quality=88, **extra)
    elif kind == "PNG":
        if image.mode not in ("RGB", "RGBA", "L", "LA", "P"):
            image = image.convert("RGBA")
        if "transparency" in image.info:
            extra["transparency"] = image.info["transparency"]
        image.save(out, "PNG", compress_level=6, **extra)
    else:
        if image.mode not in ("RGB", "RGBA"):
            image = image.convert("RGBA" if "A" in image.getbands() else "RGB")
        image.save(out, "WEBP", quality=85, method=4, **extra)
    return out.getvalue()


def _thumbnail(image: Image.Image) -> Image.Image:
    """At most THUMB_SIDE on the longer side, resized straight from the frame (no full copy)."""
    scale = min(1.0, THUMB_SIDE / max(image.width, image.height))
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    if image.mode not in ("RGB", "RGBA", "L", "LA"):
        image = image.convert(
            "RGBA" if "transparency" in image.info or "A" in image.getbands() else "RGB"
        )
    return image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


def process(data: bytes, max_pixels: int) -> Processed:
    """Decode, orient, strip and re-encode an upload, and make its thumbnail (blocking)."""
    image = _open(data, max_pixels)
    kind = OUTPUT[str(image.format)]
    icc = image.info.get("icc_profile")
    transparency = image.info.get("transparency")  # a palette PNG's see-through colour
    oriented = ImageOps.exif_transpose(image)
    if oriented is not image:
        image.close()  # one decoded frame in memory at a time, not two
    image = oriented
    image.info = {}  # nothing of the sent metadata goes any further
    if transparency is not None and kind == "PNG" and image.mode in ("P", "L", "RGB"):
        image.info["transparency"] = transparency  # pixels, not metadata: kept
    stored = _encode(image, kind, icc)
    thumb = _thumbnail(image)
    thumb_bytes = _encode(thumb, "WEBP", None)
    return Processed(
        stored,
        CONTENT_TYPES[kind],
        image.width,
        image.height,
        thumb_bytes,
        thumb.width,
        thumb.height,
    )


# What our own encoder leaves in a file's metadata; anything else (EXIF, XMP, IPTC, comments)
# means the file is not one we stored, so it is processed like an upload.
OUR_INFO = {
    "jfif",
    "jfif_version",
    "jfif_unit",
    "jfif_density",
    "dpi",
    "icc_profile",
    "background",
    "loop",
    "duration",
    "progressive",
    "progression",
}


def _as_we_store(image: Image.Image, data: bytes) -> bool:
    """The file is as our encoder writes it: no metadata of other kinds, one frame, and no
    bytes after the image's end (nothing appended: no zip or HTML riding along)."""
    if set(image.info) - OUR_INFO or image.getexif() or getattr(image, "n_frames", 1) != 1:
        return False
    if image.format == "JPEG":
        return data.endswith(b"\xff\xd9")
    if image.format == "PNG":
        return data.endswith(b"IEND\xaeB`\x82")
    return data[:4] == b"RIFF" and int.from_bytes(data[4:8], "little") + 8 == len(data)


def verify_kept(data: bytes, max_pixels: int) -> Processed:
    """A file from our own archive, kept byte for byte when it is what we store (an allowed
    image that decodes fully and carries no EXIF); otherwise it is processed like an upload."""
    image = _open(data, max_pixels)
    if image.format not in CONTENT_TYPES or not _as_we_store(image, data):
        return process(data, max_pixels)
    thumb = _thumbnail(image)
    thumb.info = {}
    return Processed(
        data,
        CONTENT_TYPES[str(image.format)],
        image.width,
        image.height,
        _encode(thumb, "WEBP", None),
        thumb.width,
        thumb.height,
    )


def clean_alt(alt: str | None, fallback: str) -> str:
    text = alt if alt is not None and alt.strip() else fallback
    printable = "".join(ch if ch.isprintable() else " " for ch in text)
    return " ".join(printable.split())[:ALT_MAX]


async def usage(session: AsyncSession, user: User) -> int:
    """The bytes of the user's photos and thumbnails."""
    total = await session.scalar(
        select(func.coalesce(func.sum(col(Photo.bytes) + col(Photo.thumb_bytes)), 0)).where(
            col(Photo.user_id) == user.id
        )
    )
    return int(total or 0)


def _over_quota(settings: Settings) -> PhotoProblem:
    return PhotoProblem(
        413,
        "MEDIA_QUOTA_EXCEEDED",
        f"Your photos may take at most {settings.media_quota_bytes / 1_000_000:g} MB in all: "
        "remove some to add more.",
    )


def _too_many() -> PhotoProblem:
    return PhotoProblem(
        409, "TOO_MANY_PHOTOS", f"A win holds at most {MAX_PER_ENTRY} photos: remove one first."
    )


async def add_photo(
    *,
    session: AsyncSession,
    user: User,
    entry: Entry,
    data: bytes,
    filename: str,
    alt: str | None,
    storage: Storage,
    settings: Settings,
    keep_bytes: bool = False,
) -> Photo:
    """Store one photo on the user's entry (refusing with PhotoProblem), and return its row.

    `filename` is what the sender called it: it is never used for storing or serving (the
    content hash names the file), only kept out. `keep_bytes` (our own archive on import)
    keeps a clean file byte for byte (verify_kept)."""
    del filename
    assert entry.id is not None
    entry_id, title, user_id = entry.id, entry.title, user.id
    if len(data) > settings.media_max_bytes:
        raise too_large(settings.media_max_bytes)
    if entry.photo_count >= MAX_PER_ENTRY:
        raise _too_many()
    used = await usage(session, user)
    if used + len(data) > settings.media_quota_bytes:
        raise _over_quota(settings)
    await session.rollback()  # no transaction stays open while the image is decoded
    work = verify_kept if keep_bytes else process
    done = await anyio.to_thread.run_sync(work, data, settings.media_max_pixels)
    if used + done.total > settings.media_quota_bytes:
        raise _over_quota(settings)
    ext = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp"}[done.content_type]
    key = f"{user_id}/{secrets.token_urlsafe(16)}.{ext}"
    photo = Photo(
        user_id=user_id,
        entry_id=entry_id,
        key=key,
        sha256=done.sha256,
        content_type=done.content_type,
        width=done.width,
        height=done.height,
        bytes=len(done.data),
        thumb_width=done.thumb_width,
        thumb_height=done.thumb_height,
        thumb_bytes=len(done.thumb),
        alt=clean_alt(alt, title),
    )
    await anyio.to_thread.run_sync(storage.put, photo.thumb_key, done.thumb, "image/webp")
    await anyio.to_thread.run_sync(storage.put, key, done.data, done.content_type)
    try:
        # One conditional UPDATE claims a place on the entry: two uploads at once cannot both
        # take the tenth place.
        count = (
            await session.execute(
                update(Entry)
                .where(col(Entry.id) == entry_id, col(Entry.photo_count) < MAX_PER_ENTRY)
                .values(photo_count=col(Entry.photo_count) + 1)
                .returning(col(Entry.photo_count))
                .execution_options(synchronize_session=False)
            )
        ).scalar_one_or_none()
        if count is None:
            raise _too_many()
        photo.position = count - 1
        session.add(photo)
        await session.commit()
    except BaseException:
        await session.rollback()
        await _remove_files(storage, [photo])
        raise
    await session.refresh(photo)
    if user in session:  # the caller may go on with it (several files from one form)
        await session.refresh(user)
    return photo


async def _remove_files(storage: Storage, photos: Iterable[Photo]) -> None:
    for photo in photos:
        for key in (photo.key, photo.thumb_key):
            await anyio.to_thread.run_sync(storage.delete, key)


async def get_photo(*, session: AsyncSession, user: User, photo_id: int) -> Photo | None:
    """The user's photo on a visible (not deleted) entry; None for anyone else's."""
    stmt = (
        select(Photo)
        .join(Entry, col(Entry.id) == col(Photo.entry_id))
        .where(
            col(Photo.id) == photo_id,
            col(Photo.user_id) == user.id,
            col(Entry.deleted_at).is_(None),
        )
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def list_photos(*, session: AsyncSession, user: User, entry_id: int) -> list[Photo]:
    stmt = (
        select(Photo)
        .where(col(Photo.entry_id) == entry_id, col(Photo.user_id) == user.id)
        .order_by(col(Photo.position), col(Photo.id))
    )
    return list((await session.execute(stmt)).scalars())


async def photos_for(session: AsyncSession, entry_ids: list[int]) -> dict[int, list[Photo]]:
    """The photos of these entries, in order, in one query (callers pass only ids they own)."""
    found: dict[int, list[Photo]] = {}
    if not entry_ids:
        return found
    stmt = (
        select(Photo)
        .where(col(Photo.entry_id).in_(entry_ids))
        .order_by(col(Photo.entry_id), col(Photo.position), col(Photo.id))
    )
    for photo in (await session.execute(stmt)).scalars():
        found.setdefault(photo.entry_id, []).append(photo)
    return found


async def update_photo(
    *,
    session: AsyncSession,
    user: User,
    photo: Photo,
    alt: str | None = None,
    position: int | None = None,
) -> Photo:
    """Change the alt text and/or move the photo to `position` (0 first) among its entry's."""
    if alt is not None:
        entry = await session.get(Entry, photo.entry_id)
        photo.alt = clean_alt(alt, entry.title if entry else "")
    if position is not None:
        siblings = await list_photos(session=session, user=user, entry_id=photo.entry_id)
        order = [p for p in siblings if p.id != photo.id]
        order.insert(max(0, min(position, len(order))), photo)
        for index, item in enumerate(order):
            if item.position != index:
                item.position = index
    await session.commit()
    await session.refresh(photo)
    return photo


async def delete_photo(
    *, session: AsyncSession, user: User, photo: Photo, storage: Storage
) -> None:
    """Remove the row (and close the gap in the order), then its files."""
    entry_id = photo.entry_id
    await session.execute(delete(Photo).where(col(Photo.id) == photo.id))
    await session.execute(
        update(Entry)
        .where(col(Entry.id) == entry_id)
        .values(photo_count=col(Entry.photo_count) - 1)
        .execution_options(synchronize_session=False)
    )
    await session.commit()
    for index, item in enumerate(await list_photos(session=session, user=user, entry_id=entry_id)):
        item.position = index
    await session.commit()
    await _remove_files(storage, [photo])


async def keys_of_entries(session: AsyncSession, entry_ids: list[int]) -> list[str]:
    """The storage keys (images and thumbnails) of these entries' photos."""
    if not entry_ids:
        return []
    stmt = select(col(Photo.key)).where(col(Photo.entry_id).in_(entry_ids))
    return [
        k for key in (await session.execute(stmt)).scalars() for k in (key, f"{key}.thumb.webp")
    ]


async def remove_keys(storage: Storage, keys: Iterable[str]) -> None:
    for key in keys:
        await anyio.to_thread.run_sync(storage.delete, key)


async def read(storage: Storage, photo: Photo, *, thumb: bool) -> bytes | None:
    """The stored bytes of a photo or its thumbnail; None when the file is missing."""
    try:
        return await anyio.to_thread.run_sync(storage.get, photo.thumb_key if thumb else photo.key)
    except MissingFile:
        return None


@dataclass
class MediaReport:
    orphans: list[str]
    missing: list[str]
    files: int


def media_check_sync(storage: Storage, known: set[str], *, remove: bool) -> MediaReport:
    """Compare the storage with the database's keys: orphan files (removed with `remove`)
    and rows whose file is missing."""
    files = set(storage.keys())
    orphans = sorted(files - known)
    missing = sorted(known - files)
    if remove:
        for key in orphans:
            storage.delete(key)
    return MediaReport(orphans, missing, len(files))


async def all_keys(session: AsyncSession) -> set[str]:
    rows = (await session.execute(select(col(Photo.key)))).scalars()
    return {k for key in rows for k in (key, f"{key}.thumb.webp")}


def photo_read(photo: Photo) -> PhotoRead:
    """A photo as the API answers it."""
    assert photo.id is not None
    return PhotoRead(
        id=photo.id,
        url=photo.url,
        thumbnail_url=photo.thumbnail_url,
        width=photo.width,
        height=photo.height,
        content_type=photo.content_type,
        bytes=photo.bytes,
        alt=photo.alt,
        position=photo.position,
    )
