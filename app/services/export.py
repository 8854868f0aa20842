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

from app.models import Category, Entry, User
from app.services.entries import EntryView, from_minor, visible_entries, with_photos

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
}
EXTENSIONS = {"json": "json", "markdown": "zip", "csv": "csv"}
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
        if not rows:
            return
        last = rows[-1][0]
        assert last.id is not None
        after = (last.day, last.id)
        yield [entry_record(entry, name) for entry, name in rows]


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


async def export_json(maker: async_sessionmaker[AsyncSession], user: User) -> AsyncIterator[bytes]:
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


async def export_csv(maker: async_sessionmaker[AsyncSession], user: User) -> AsyncIterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    yield buffer.getvalue().encode()
    async for batch in _records(maker, user):
        buffer.seek(0)
        buffer.truncate()
        for record in batch:
            row = {**record, "tags": " ".join(record["tags"])}
            writer.writerow(["" if row[c] is None else _csv_safe(str(row[c])) for c in CSV_COLUMNS])
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
    return (
        "---\n"
        + yaml.safe_dump(front, sort_keys=False, allow_unicode=True)
        + "---\n\n"
        + record["body"]
        + "\n"
    )


async def export_markdown(
    maker: async_sessionmaker[AsyncSession], user: User
) -> AsyncIterator[bytes]:
    sink = _Chunks()
    names: set[str] = set()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as archive:
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
            batch = await with_photos(session, [EntryView(entry, category) for entry, category in rows])
        if not rows:
            return
        last = batch[-1].entry
        assert last.id is not None
        after = (last.day, last.id)
        yield batch
        if len(rows) < PRINT_BATCH:
            return


EXPORTERS = {"json": export_json, "csv": export_csv, "markdown": export_markdown}
