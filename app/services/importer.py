"""Import wins: our JSON export, Day One JSON (zip or json) and jrnl JSON.

`read_file` recognises the format and checks every entry before anything is written;
`import_plan` then writes all of it in one transaction (or nothing). Entries that already
exist (same day, title and body), or appear twice in the file, are skipped, so importing the
same file again adds nothing.
"""

import hashlib
import io
import json
import zipfile
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.markdown import render
from app.models import Category, Entry, EntryTag, User
from app.models.base import utcnow
from app.schemas import EntryCreate, Preferences
from app.services.entries import EntryProblem, to_minor
from app.services.export import FORMAT
from app.services.text import parse_tags

MAX_UNZIPPED = 100_000_000
MAX_MEMBERS = 1000
MAX_RATIO = 200
MAX_ERRORS = 20
BATCH = 200


class ImportProblem(Exception):
    """The file cannot be imported; `errors` say exactly where and why."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


@dataclass
class Item:
    data: EntryCreate
    category: str | None
    tags: list[str]
    amount_minor: int | None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def key(self) -> str:
        return entry_key(
            self.data.day.isoformat() if self.data.day else "",
            self.data.title,
            self.data.body or "",
        )


@dataclass
class Plan:
    source: str
    items: list[Item]
    categories: dict[str, str] = field(default_factory=dict)  # name -> colour
    preferences: Preferences | None = None
    duplicates: int = 0
    new_categories: list[str] = field(default_factory=list)


def entry_key(day: str, title: str, body: str) -> str:
    return hashlib.sha256(f"{day}\x1f{title}\x1f{body}".encode()).hexdigest()


def read_file(filename: str, content: bytes, user: User) -> Plan:
    """Recognise and check a file; raise ImportProblem saying what is wrong."""
    if content[:4] == b"PK\x03\x04":
        documents = _unzip(filename, content)
    else:
        documents = [(filename, _json(filename, content))]
    plans = [_plan(name, doc, user) for name, doc in documents]
    merged = Plan(plans[0].source, [i for p in plans for i in p.items])
    for plan in plans:
        merged.categories |= plan.categories
        merged.preferences = merged.preferences or plan.preferences
    return merged


def _json(name: str, content: bytes) -> Any:
    try:
        return json.loads(content.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise ImportProblem([f"{name}: this is not a text file (expected JSON in UTF-8)."]) from exc
    except json.JSONDecodeError as exc:
        raise ImportProblem(
            [f"{name}: malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}."]
        ) from exc


def _unzip(filename: str, content: bytes) -> list[tuple[str, Any]]:
    """The JSON files of a zip, refusing bombs and odd paths before reading anything."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(content))
    except zipfile.BadZipFile as exc:
        raise ImportProblem([f"{filename}: this zip file is damaged."]) from exc
    members = archive.infolist()
    if len(members) > MAX_MEMBERS:
        raise ImportProblem([f"{filename}: too many files in the zip ({len(members)})."])
    if sum(m.file_size for m in members) > MAX_UNZIPPED:
        raise ImportProblem(
            [f"{filename}: the zip unpacks to more than {MAX_UNZIPPED // 1_000_000} MB."]
        )
    documents = []
    for member in members:
        name = member.filename
        if (
            name.startswith(("/", "\\"))
            or ".." in name.replace("\\", "/").split("/")
            or ":" in name
        ):
            raise ImportProblem(
                [f"{filename}: refusing the unsafe path {name[:100]!r} in the zip."]
            )
        if member.compress_size and member.file_size / member.compress_size > MAX_RATIO:
            raise ImportProblem(
                [f"{filename}: {name[:100]} is compressed suspiciously well (a zip bomb?)."]
            )
        if name.lower().endswith(".json") and not member.is_dir():
            with archive.open(member) as handle:
                documents.append((name, _json(name, handle.read(member.file_size + 1))))
    if not documents:
        raise ImportProblem(
            [f"{filename}: no JSON file in this zip (a Day One export holds Journal.json)."]
        )
    return documents


def _plan(name: str, doc: Any, user: User) -> Plan:
    if isinstance(doc, dict) and doc.get("format") == FORMAT:
        return _ours(name, doc)
    if isinstance(doc, dict) and isinstance(doc.get("entries"), list):
        entries = doc["entries"]
        if all(isinstance(e, dict) and "creationDate" in e for e in entries):
            return Plan("Day One", _checked(name, [_day_one(e, user) for e in entries]))
        if all(isinstance(e, dict) and "date" in e and "title" in e for e in entries):
            return Plan("jrnl", _checked(name, [_jrnl(e) for e in entries]))
    raise ImportProblem([f"{name}: not a SuccessDiary, Day One or jrnl JSON export."])


def _ours(name: str, doc: dict[str, Any]) -> Plan:
    if doc.get("version") != 1:
        raise ImportProblem(
            [f"{name}: SuccessDiary export version {doc.get('version')!r} is not supported (1 is)."]
        )
    raw = doc.get("entries")
    if not isinstance(raw, list):
        raise ImportProblem([f"{name}: 'entries' must be a list."])
    plan = Plan("SuccessDiary", _checked(name, raw))
    for i, category in enumerate(doc.get("categories") or []):
        try:
            plan.categories[str(category["name"])[:50]] = str(category.get("colour") or "#64748b")[
                :7
            ]
        except (TypeError, KeyError):
            raise ImportProblem([f"{name}, category {i + 1}: needs a name."]) from None
    if doc.get("preferences") is not None:
        try:
            plan.preferences = Preferences.model_validate(doc["preferences"])
        except ValidationError as exc:
            raise ImportProblem([f"{name}, preferences: {_first(exc)}"]) from exc
    return plan


def _first(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(p) for p in error["loc"])
    return f"{where}: {error['msg'].removeprefix('Value error, ')}"


def _checked(name: str, raw: list[Any]) -> list[Item]:
    items, errors = [], []
    for i, record in enumerate(raw):
        try:
            if not isinstance(record, dict):
                raise ValueError("not an object")
            items.append(_item(record))
        except ValidationError as exc:
            errors.append(f"{name}, entry {i + 1}, {_first(exc)}")
        except (EntryProblem, ValueError, TypeError) as exc:
            field_name = getattr(exc, "field", "entry")
            errors.append(f"{name}, entry {i + 1}, {field_name}: {exc}")
        if len(errors) >= MAX_ERRORS:
            errors.append("… and maybe more; fix these first.")
            break
    if errors:
        raise ImportProblem(errors)
    return items


def _item(record: dict[str, Any]) -> Item:
    data = EntryCreate.model_validate(
        {k: record.get(k) for k in ("day", "title", "body", "mood", "tags", "amount", "currency")}
        | {"body": record.get("body") or ""}
    )
    if data.day is None:
        raise ValueError("a date is required")
    try:
        tags = parse_tags(data.tags or [], data.body or "")
    except ValueError as exc:
        raise EntryProblem("tags", str(exc)) from exc
    minor = None
    if data.amount is not None:
        if not data.currency:
            raise EntryProblem("currency", "an amount needs its currency")
        minor = to_minor(data.amount, data.currency)
    category = record.get("category")
    return Item(
        data,
        str(category)[:50] if category else None,
        tags,
        minor,
        _when(record.get("created_at")),
        _when(record.get("updated_at")),
    )


def _when(value: Any) -> datetime | None:
    if not value:
        return None
    moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError("times need a time zone offset")
    return moment


def _day_one(entry: dict[str, Any], user: User) -> dict[str, Any]:
    moment = datetime.fromisoformat(str(entry["creationDate"]).replace("Z", "+00:00"))
    try:
        zone = ZoneInfo(str(entry.get("timeZone") or user.timezone))
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo(user.timezone)
    text = str(entry.get("text") or "").replace("\r\n", "\n")
    first, _, rest = text.strip().partition("\n")
    title = first.lstrip("#").strip()[:200] or "Untitled"
    return {
        "day": moment.astimezone(zone).date().isoformat(),
        "title": title,
        "body": rest.strip(),
        "tags": [str(t).replace(" ", "-") for t in entry.get("tags") or []],
        "created_at": moment.isoformat(),
    }


def _jrnl(entry: dict[str, Any]) -> dict[str, Any]:
    return {
        "day": entry.get("date"),
        "title": str(entry.get("title") or "").strip()[:200] or "Untitled",
        "body": str(entry.get("body") or "").strip(),
        "tags": [str(t).lstrip("@#") for t in entry.get("tags") or []],
    }


async def _existing_keys(session: AsyncSession, user: User) -> Counter[str]:
    stmt = select(col(Entry.day), col(Entry.title), col(Entry.body)).where(
        col(Entry.user_id) == user.id, col(Entry.deleted_at).is_(None)
    )
    result = await session.stream(stmt.execution_options(yield_per=1000))
    return Counter([entry_key(day.isoformat(), title, body) async for day, title, body in result])


async def preview(*, session: AsyncSession, user: User, plan: Plan) -> Plan:
    """Drop entries the diary already holds; name new categories.

    Counted, not just matched: two identical wins in the file stay two, unless the diary
    already has both (so a round trip is exact and a second import adds nothing)."""
    have = await _existing_keys(session, user)
    fresh = []
    for item in plan.items:
        if have[item.key] > 0:
            have[item.key] -= 1
            plan.duplicates += 1
            continue
        fresh.append(item)
    plan.items = fresh
    stmt = select(col(Category.name)).where(col(Category.user_id) == user.id)
    names = {n.lower() for n in (await session.execute(stmt)).scalars()}
    wanted = list(plan.categories) + [i.category for i in fresh if i.category]
    plan.new_categories = list(dict.fromkeys(n for n in wanted if n.lower() not in names))
    return plan


async def import_plan(
    *,
    session: AsyncSession,
    user: User,
    plan: Plan,
    progress: Callable[[int, int], Awaitable[None]] | None = None,
) -> int:
    """Write a previewed plan in one transaction; returns the number of entries added."""
    ids = {
        c.name.lower(): c.id
        for c in (
            await session.execute(select(Category).where(col(Category.user_id) == user.id))
        ).scalars()
    }
    for name in plan.new_categories:
        category = Category(user_id=user.id, name=name, colour=plan.categories.get(name, "#64748b"))
        session.add(category)
        await session.flush()
        ids[name.lower()] = category.id
    if plan.preferences is not None:
        for key, value in plan.preferences.model_dump().items():
            setattr(user, key, value)
    now = utcnow()
    for start in range(0, len(plan.items), BATCH):
        batch = plan.items[start : start + BATCH]
        rows = [_entry(user, item, ids, now) for item in batch]
        session.add_all(rows)
        await session.flush()
        session.add_all(
            EntryTag(entry_id=row.id or 0, tag=t, user_id=user.id)
            for row in rows
            for t in row.tag_list
        )
        await session.flush()
        if progress is not None:
            await progress(start + len(batch), len(plan.items))
    await session.commit()
    return len(plan.items)


def _entry(user: User, item: Item, ids: dict[str, int | None], now: datetime) -> Entry:
    data = item.data
    assert data.day is not None
    body = data.body or ""
    return Entry(
        user_id=user.id,
        category_id=ids.get(item.category.lower()) if item.category else None,
        day=data.day,
        title=data.title,
        body=body,
        body_html=render(body),
        tags=" ".join(item.tags),
        mood=data.mood,
        amount_minor=item.amount_minor,
        currency=data.currency if item.amount_minor is not None else None,
        created_at=item.created_at or now,
        updated_at=item.updated_at or item.created_at or now,
    )
