"""Export everything a user wrote: JSON (versioned, lossless), Markdown (zip), CSV.

Each format is produced as a stream of byte chunks, reading entries 500 at a time in
(day, id) order, so memory stays flat however large the diary is. The JSON document holds no
ids and no export time, so export -> import into a fresh account -> export gives the same bytes.
The print view reads its entries the same way (`print_batches`), a few at a time. A user has at
most EXPORTS_AT_ONCE of them running at once in a process (`slots`).
"""

import csv
import io
import json
import re
import uuid
import zipfile
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date
from typing import Any

import yaml
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import QueryableAttribute, defer
from sqlmodel import col

from app.models import Category, Entry, Photo, User
from app.services.entries import EntryView, from_minor, visible_entries, with_photos
from app.services.photos import photos_for, read
from app.storage import Storage

FORMAT = "successdiary"
VERSION = 1
BATCH = 500
CSV_COLUMNS = [
    "day",
    "title",
    "body",
    "category",
    "mood",
    "tags",
    "amount",
    "currency",
    "created_at",
    "updated_at",
]
MEDIA_TYPES = {
    "json": "application/json",
    "markdown": "application/zip",
    "csv": "text/csv; charset=utf-8",
    "archive": "application/zip",
}
EXTENSIONS = {"json": "json", "markdown": "zip", "csv": "csv", "archive": "zip"}
# The archive's JSON document; its photos are beside it in media/, named by content hash.
ARCHIVE_JSON = "successdiary.json"
# Zip members carry this time, so the same diary always makes the same archive bytes.
ZIP_TIME = (1980, 1, 1, 0, 0, 0)
# Downloads and print views a user may have running at once in one worker process. Each holds
# a batch of entries and a chunk of output (not the whole diary), and this bounds how many of
# those one account can stack up: with several workers, up to this many per worker.
EXPORTS_AT_ONCE = 2
# The newest this many entries of the dates asked for make one printout, read this many at a
# time: an entry's text is up to 100,000 characters, so a batch stays within a few megabytes.
PRINT_MAX = 2000
PRINT_BATCH = 20


class ExportSlots:
    """How many exports (downloads and print views) each user has running in this process."""

    def __init__(self, per_user: int = EXPORTS_AT_ONCE) -> None:
        self.per_user = per_user
        self.running: Counter[uuid.UUID] = Counter()

    def take(self, user_id: uuid.UUID) -> bool:
        """One more for this user, unless they already have `per_user` running."""
        if self.running[user_id] >= self.per_user:
            return False
        self.running[user_id] += 1
        return True

    def give_back(self, user_id: uuid.UUID) -> None:
        self.running[user_id] -= 1
        if self.running[user_id] <= 0:
            del self.running[user_id]


slots = ExportSlots()


def entry_record(entry: Entry, category: str | None) -> dict[str, Any]:
    amount = from_minor(entry.amount_minor, entry.currency)
    return {
        "day": entry.day.isoformat(),
        "title": entry.title,
        "body": entry.body,
        "category": category,
        "mood": entry.mood,
        "tags": entry.tag_list,
        "amount": None if amount is None else str(amount),
        "currency": entry.currency,
        "created_at": entry.created_at.isoformat(),
        "updated_at": entry.updated_at.isoformat(),
    }


async def _records(
    maker: async_sessionmaker[AsyncSession], user: User
) -> AsyncIterator[list[dict[str, Any]]]:
    """Entries in (day, id) order, a batch at a time, each in its own short session."""
    after: tuple[Any, int] | None = None
    while True:
        async with maker() as session:
            stmt = (
                select(Entry, col(Category.name))
                .outerjoin(Category, col(Category.id) == col(Entry.category_id))
                .where(col(Entry.user_id) == user.id, col(Entry.deleted_at).is_(None))
                .order_by(col(Entry.day), col(Entry.id))
                .limit(BATCH)
            )
            if after is not None:
                day, last_id = after
                stmt = stmt.where(
                    (col(Entry.day) > day) | ((col(Entry.day) == day) & (col(Entry.id) > last_id))
                )
            rows = (await session.execute(stmt)).all()
            with_files = [e.id for e, _ in rows if e.photo_count and e.id is not None]
            found = await photos_for(session, with_files)
        if not rows:
            return
        last = rows[-1][0]
        assert last.id is not None
        after = (last.day, last.id)
        records = []
        for entry, name in rows:
            record = entry_record(entry, name)
            if found.get(entry.id or 0):
                record["photos"] = [
                    {"file": f"media/{p.file_name}", "alt": p.alt} for p in found[entry.id or 0]
                ]
            records.append(record)
        yield records


async def _header(maker: async_sessionmaker[AsyncSession], user: User) -> dict[str, Any]:
    async with maker() as session:
        stmt = (
            select(col(Category.name), col(Category.colour))
            .where(col(Category.user_id) == user.id)
            .order_by(col(Category.name))
        )
        categories = [{"name": n, "colour": c} for n, c in (await session.execute(stmt)).all()]
    return {
        "format": FORMAT,
        "version": VERSION,
        "preferences": {
            "timezone": user.timezone,
            "week_start": user.week_start,
            "theme": user.theme,
            "base_currency": user.base_currency,
        },
        "categories": categories,
    }


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=False)


async def export_json(
    maker: async_sessionmaker[AsyncSession], user: User, media: Storage | None = None
) -> AsyncIterator[bytes]:
    header = await _header(maker, user)
    head = ",\n".join(f"  {_dump(k)}: {_dump(v)}" for k, v in header.items())
    yield ("{\n" + head + ',\n  "entries": [').encode()
    first = True
    async for batch in _records(maker, user):
        lines = [
            ("\n    " if first and i == 0 else ",\n    ") + _dump(r) for i, r in enumerate(batch)
        ]
        first = False
        yield "".join(lines).encode()
    yield ("\n  ]\n}\n" if not first else "]\n}\n").encode()


async def export_csv(
    maker: async_sessionmaker[AsyncSession], user: User, media: Storage | None = None
) -> AsyncIterator[bytes]:
    """One row per entry; `photos` holds its photos' file names (as in the archive's media/)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([*CSV_COLUMNS, "photos"])
    yield buffer.getvalue().encode()
    async for batch in _records(maker, user):
        buffer.seek(0)
        buffer.truncate()
        for record in batch:
            row = {**record, "tags": " ".join(record["tags"])}
            names = " ".join(p["file"].removeprefix("media/") for p in record.get("photos", []))
            writer.writerow(
                ["" if row[c] is None else _csv_safe(str(row[c])) for c in CSV_COLUMNS] + [names]
            )
        yield buffer.getvalue().encode()


def _csv_safe(value: str) -> str:
    """Spreadsheets run cells starting with = + - @ as formulas: make them plain text."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


class _Chunks(io.RawIOBase):
    """A write-only, unseekable sink: zipfile streams into it and we hand the bytes on."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.parts.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        data, self.parts = b"".join(self.parts), []
        return data


def slug(title: str) -> str:
    return re.sub(r"[^\w]+", "-", title.lower()).strip("-")[:60] or "entry"


def markdown_file(record: dict[str, Any]) -> str:
    front = {k: record[k] for k in CSV_COLUMNS if k != "body" and record[k] not in (None, [])}
    pictures = "".join(
        f"\n![{_md_alt(p['alt'])}](../{p['file']})\n" for p in record.get("photos", [])
    )
    return (
        "---\n"
        + yaml.safe_dump(front, sort_keys=False, allow_unicode=True)
        + "---\n\n"
        + record["body"]
        + "\n"
        + pictures
    )


def _md_alt(alt: str) -> str:
    return re.sub(r"[\[\]\\]", "", alt)


def _member(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=ZIP_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    return info


async def _media_files(
    maker: async_sessionmaker[AsyncSession], user: User, media: Storage
) -> AsyncIterator[tuple[str, bytes]]:
    """Each distinct photo file of the user's visible entries, by name, one at a time."""
    async with maker() as session:
        stmt = (
            select(Photo)
            .join(Entry, col(Entry.id) == col(Photo.entry_id))
            .where(col(Photo.user_id) == user.id, col(Entry.deleted_at).is_(None))
        )
        found = {p.file_name: p for p in (await session.execute(stmt)).scalars()}
    for name in sorted(found):
        data = await read(media, found[name], thumb=False)
        if data is not None:
            yield f"media/{name}", data


async def export_archive(
    maker: async_sessionmaker[AsyncSession], user: User, media: Storage | None = None
) -> AsyncIterator[bytes]:
    """A zip of the JSON export (successdiary.json) and every photo in media/: importing it
    into a fresh account and exporting again gives the same bytes."""
    assert media is not None
    sink = _Chunks()
    document = b"".join([chunk async for chunk in export_json(maker, user)])
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(_member(ARCHIVE_JSON), document)
        yield sink.take()
        async for name, data in _media_files(maker, user, media):
            archive.writestr(_member(name), data, compress_type=zipfile.ZIP_STORED)
            yield sink.take()
    yield sink.take()


async def export_markdown(
    maker: async_sessionmaker[AsyncSession], user: User, media: Storage | None = None
) -> AsyncIterator[bytes]:
    sink = _Chunks()
    names: set[str] = set()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        if media is not None:
            async for name, data in _media_files(maker, user, media):
                archive.writestr(_member(name), data, compress_type=zipfile.ZIP_STORED)
                yield sink.take()
        async for batch in _records(maker, user):
            for record in batch:
                base = f"{record['day'][:4]}/{record['day']}-{slug(record['title'])}"
                name, n = f"{base}.md", 1
                while name in names:
                    n += 1
                    name = f"{base}-{n}.md"
                names.add(name)
                archive.writestr(name, markdown_file(record))
            yield sink.take()
    yield sink.take()


@dataclass(frozen=True)
class Printout:
    """Which entries a printout holds: from `first` (day, id) on, oldest first; `cut` when
    older entries of the dates were left out to keep it at PRINT_MAX."""

    start: date
    end: date
    first: tuple[date, int] | None
    cut: bool


BODY: QueryableAttribute[str] = Entry.body  # type: ignore[assignment]


def _in_dates(user: User, start: date, end: date) -> Any:
    return (
        visible_entries(user)
        .where(col(Entry.day) >= start, col(Entry.day) <= end)
        .options(defer(BODY, raiseload=True))  # printed as body_html only
    )


async def printout(session: AsyncSession, user: User, start: date, end: date) -> Printout:
    stmt = (
        select(col(Entry.day), col(Entry.id))
        .where(
            col(Entry.user_id) == user.id,
            col(Entry.deleted_at).is_(None),
            col(Entry.day) >= start,
            col(Entry.day) <= end,
        )
        .order_by(col(Entry.day).desc(), col(Entry.id).desc())
        .offset(PRINT_MAX - 1)
        .limit(2)
    )
    rows = (await session.execute(stmt)).all()
    first = (rows[0][0], rows[0][1]) if rows else None
    return Printout(start, end, first, cut=len(rows) > 1)


async def print_batches(
    maker: async_sessionmaker[AsyncSession], user: User, plan: Printout
) -> AsyncIterator[list[EntryView]]:
    """The printout's entries, oldest first, PRINT_BATCH at a time, each in its own session."""
    after: tuple[date, int] | None = None
    while True:
        stmt = _in_dates(user, plan.start, plan.end)
        if plan.first is not None:
            day, first_id = plan.first
            stmt = stmt.where(
                (col(Entry.day) > day) | ((col(Entry.day) == day) & (col(Entry.id) >= first_id))
            )
        if after is not None:
            day, last_id = after
            stmt = stmt.where(
                (col(Entry.day) > day) | ((col(Entry.day) == day) & (col(Entry.id) > last_id))
            )
        stmt = stmt.order_by(col(Entry.day), col(Entry.id)).limit(PRINT_BATCH)
        async with maker() as session:
            rows = (await session.execute(stmt)).all()
            batch = await with_photos(
                session, [EntryView(entry, category) for entry, category in rows]
            )
        if not rows:
            return
        last = batch[-1].entry
        assert last.id is not None
        after = (last.day, last.id)
        yield batch
        if len(rows) < PRINT_BATCH:
            return


EXPORTERS = {
    "json": export_json,
    "csv": export_csv,
    "markdown": export_markdown,
    "archive": export_archive,
}
