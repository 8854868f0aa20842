"""Import wins: our JSON export, Day One JSON (zip or json) and jrnl JSON.

`read_file` recognises the format and checks every entry before anything is written, with
the API's own rules (EntryCreate, CategoryCreate, the tag rules): a field of the wrong type
or value is an error naming the record and field, never a crash. `import_plan` then writes
all of it in one transaction (or nothing). Category names that differ only by case or spaces
are one category (the diary's own spelling, else the first in the file); the preview says so.
Entries that already exist (same day, title and body), or appear twice in the file, are
skipped, so importing the same file again adds nothing.
"""

import hashlib
import io
import json
import re
import zipfile
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.markdown import render
from app.models import Category, Entry, EntryTag, User
from app.models.base import utcnow
from app.schemas import (
    CategoryCreate,
    EntryCreate,
    Preferences,
    category_name,
    day_problem,
    stored_days,
)
from app.services import Problem
from app.services.categories import category_key, next_colour
from app.services.entries import to_minor
from app.services.export import FORMAT
from app.services.text import parse_tags

if TYPE_CHECKING:
    from app.config import Settings
    from app.storage import Storage

MAX_UNZIPPED = 100_000_000
MAX_MEMBERS = 1000
MAX_RATIO = 200
MAX_ERRORS = 20
BATCH = 200


class ImportProblem(Problem):
    """The file cannot be imported; `errors` say exactly where and why."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("file", "; ".join(errors))
        self.errors = errors


@dataclass
class Item:
    data: EntryCreate
    category: str | None
    tags: list[str]
    amount_minor: int | None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    # (the file's path in the zip, alt text or None): our archive's media/, Day One's photos/.
    photos: list[tuple[str, str | None]] = field(default_factory=list)

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
    categories: dict[str, CategoryCreate] = field(default_factory=dict)  # by category_key
    preferences: Preferences | None = None
    duplicates: int = 0
    new_categories: list[str] = field(default_factory=list)
    # Names filed under a category of another spelling: "work → Work".
    merged_categories: list[str] = field(default_factory=list)
    media: dict[str, bytes] = field(default_factory=dict)  # a zip's photo files by path


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
    if content[:4] == b"PK\x03\x04":
        merged.media = _zip_media(content)
    for plan in plans:
        merged.categories = plan.categories | merged.categories  # the first spelling stays
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
    except RecursionError:
        raise ImportProblem([f"{name}: the JSON is nested too deeply to be an export."]) from None


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


PHOTO_FOLDERS = ("media/", "photos/")


def _zip_media(content: bytes) -> dict[str, bytes]:
    """The photo files of a checked zip (_unzip refused bombs and odd paths already)."""
    archive = zipfile.ZipFile(io.BytesIO(content))
    return {
        m.filename: archive.read(m)
        for m in archive.infolist()
        if m.filename.startswith(PHOTO_FOLDERS) and not m.is_dir()
    }


def _plan(name: str, doc: Any, user: User) -> Plan:
    if isinstance(doc, dict) and doc.get("format") == FORMAT:
        return _ours(name, doc)
    if isinstance(doc, dict) and isinstance(doc.get("entries"), list):
        entries = doc["entries"]
        if all(isinstance(e, dict) and "creationDate" in e for e in entries):
            return Plan("Day One", _checked(name, entries, partial(_day_one, user=user)))
        if all(isinstance(e, dict) and "date" in e and "title" in e for e in entries):
            return Plan("jrnl", _checked(name, entries, _jrnl))
    raise ImportProblem([f"{name}: not a SuccessDiary, Day One or jrnl JSON export."])


def _ours(name: str, doc: dict[str, Any]) -> Plan:
    if doc.get("version") != 1:
        raise ImportProblem(
            [f"{name}: SuccessDiary export version {doc.get('version')!r} is not supported (1 is)."]
        )
    raw = doc.get("entries")
    if not isinstance(raw, list):
        raise ImportProblem([f"{name}: 'entries' must be a list."])
    plan = Plan("SuccessDiary", _checked(name, raw), _categories(name, doc.get("categories")))
    if doc.get("preferences") is not None:
        try:
            plan.preferences = Preferences.model_validate(doc["preferences"])
        except ValidationError as exc:
            raise ImportProblem([f"{name}, preferences: {_first(exc)}"]) from exc
    return plan


def _categories(name: str, raw: Any) -> dict[str, CategoryCreate]:
    """The file's categories, checked as POST /categories checks them, one per name."""
    if raw is None:
        return {}
    if not isinstance(raw, list):
        raise ImportProblem([f"{name}: 'categories' must be a list of objects."])
    found: dict[str, CategoryCreate] = {}
    errors = []
    for i, record in enumerate(raw):
        if not isinstance(record, dict):
            errors.append(f"{name}, category {i + 1}: not an object.")
            continue
        values = {k: v for k, v in record.items() if k in ("name", "colour") and v is not None}
        try:
            category = CategoryCreate.model_validate(values)
        except ValidationError as exc:
            errors.append(f"{name}, category {i + 1}, {_first(exc)}")
        else:
            found.setdefault(category_key(category.name), category)
        if len(errors) >= MAX_ERRORS:
            break
    if errors:
        raise ImportProblem(errors)
    return found


def _first(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(p) for p in error["loc"])
    return f"{where}: {error['msg'].removeprefix('Value error, ')}"


def _own(record: dict[str, Any]) -> dict[str, Any]:
    return record


def _checked(
    name: str,
    raw: list[Any],
    convert: Callable[[dict[str, Any]], dict[str, Any]] = _own,
) -> list[Item]:
    """Each record converted (from Day One or jrnl) and checked; every problem is an error
    naming the record and the field."""
    items, errors = [], []
    for i, record in enumerate(raw):
        try:
            if not isinstance(record, dict):
                raise ValueError("not an object")
            items.append(_item(convert(record)))
        except ValidationError as exc:
            errors.append(f"{name}, entry {i + 1}, {_first(exc)}")
        except (Problem, ValueError, TypeError, OverflowError) as exc:
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
        raise Problem("tags", str(exc)) from exc
    minor = None
    if data.amount is not None:
        if not data.currency:
            raise Problem("currency", "an amount needs its currency")
        minor = to_minor(data.amount, data.currency)
    return Item(
        data,
        _category(record.get("category")),
        tags,
        minor,
        _moment(record, "created_at"),
        _moment(record, "updated_at"),
        _photo_refs(record.get("photos")),
    )


def _photo_refs(raw: Any) -> list[tuple[str, str | None]]:
    """Photos named by an entry: ours ({"file", "alt"}) or Day One's ({"md5", "type"})."""
    refs: list[tuple[str, str | None]] = []
    for photo in raw if isinstance(raw, list) else []:
        if not isinstance(photo, dict):
            continue
        if isinstance(photo.get("file"), str):
            alt = photo.get("alt")
            refs.append((photo["file"][:200], alt[:500] if isinstance(alt, str) else None))
        elif isinstance(photo.get("md5"), str) and isinstance(photo.get("type"), str):
            refs.append((f"photos/{photo['md5'][:64]}.{photo['type'][:10]}", None))
    return refs[:10]


def _category(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise Problem("category", f"must be a category name, not {_kind(value)}.")
    try:
        return category_name(value)
    except ValueError as exc:
        raise Problem("category", str(exc)) from None


def _kind(value: Any) -> str:
    kinds = {bool: "true/false", int: "a number", float: "a number", list: "a list"}
    return kinds.get(type(value), "an object" if isinstance(value, dict) else "text")


def _text(record: dict[str, Any], key: str) -> str:
    value = record.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise Problem(key, f"must be text, not {_kind(value)}.")
    return value


def _texts(record: dict[str, Any], key: str) -> list[str]:
    value = record.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise Problem(key, "must be a list of text.")
    return value


def _moment(record: dict[str, Any], key: str) -> datetime | None:
    """A time with its offset (ISO 8601), on a day inside the accepted range."""
    value = _text(record, key)
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise Problem(key, f"{value[:40]!r} is not a time like 2026-11-20T09:30:00Z.") from None
    if moment.tzinfo is None:
        raise Problem(key, "times need a time zone offset.")
    problem = day_problem(moment.date())
    if problem:
        raise Problem(key, problem)
    return moment


# Day One marks where a photo sits in the text: ![](dayone-moment://<id>); the photo itself
# comes along from photos/.
DAY_ONE_MOMENT = re.compile(r"!\[[^\]]*\]\(dayone-moment:/+[^)]*\)\n?")


def _day_one(entry: dict[str, Any], user: User) -> dict[str, Any]:
    moment = _moment(entry, "creationDate")
    if moment is None:
        raise Problem("creationDate", "a date is required.")
    try:
        zone = ZoneInfo(_text(entry, "timeZone") or user.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo(user.timezone)
    text = DAY_ONE_MOMENT.sub("", _text(entry, "text").replace("\r\n", "\n"))
    first, _, rest = text.strip().partition("\n")
    title = first.lstrip("#").strip()[:200] or "Untitled"
    return {
        "day": moment.astimezone(zone).date().isoformat(),
        "title": title,
        "body": rest.strip(),
        "tags": [t.replace(" ", "-") for t in _texts(entry, "tags")],
        "created_at": moment.isoformat(),
        "photos": entry.get("photos"),
    }


def _jrnl(entry: dict[str, Any]) -> dict[str, Any]:
    return {
        "day": entry.get("date"),
        "title": _text(entry, "title").strip()[:200] or "Untitled",
        "body": _text(entry, "body").strip(),
        "tags": [t.lstrip("@#") for t in _texts(entry, "tags")],
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
    spelling = {category_key(n): n for n in (await session.execute(stmt)).scalars()}
    wanted = [c.name for c in plan.categories.values()] + [i.category for i in fresh if i.category]
    for name in wanted:
        key = category_key(name)
        if key not in spelling:
            spelling[key] = name
            plan.new_categories.append(name)
        elif spelling[key] != name:
            plan.merged_categories.append(f"{name} → {spelling[key]}")
    plan.merged_categories = list(dict.fromkeys(plan.merged_categories))
    return plan


async def import_plan(
    *,
    session: AsyncSession,
    user: User,
    plan: Plan,
    progress: Callable[[int, int], Awaitable[None]] | None = None,
    media: "Storage | None" = None,
    settings: "Settings | None" = None,
) -> int:
    """Write a previewed plan in one transaction; returns the number of entries added.

    Then the entries' photos from the zip, each as an upload is (a photo that is refused is
    left out); our own archive's files are kept byte for byte when they are clean."""
    ids = {
        category_key(c.name): c.id
        for c in (
            await session.execute(select(Category).where(col(Category.user_id) == user.id))
        ).scalars()
    }
    for name in plan.new_categories:
        given = plan.categories.get(category_key(name))
        colour = (given.colour if given else None) or await next_colour(session, user)
        category = Category(user_id=user.id, name=name, colour=colour)
        session.add(category)
        try:
            await session.flush()
        except IntegrityError:  # made meanwhile, in another tab (the unique name index)
            await session.rollback()
            raise ImportProblem(
                [f"The category {name} was just made elsewhere. Import the file again."]
            ) from None
        ids[category_key(name)] = category.id
    if plan.preferences is not None:
        for key, value in plan.preferences.model_dump().items():
            setattr(user, key, stored_days(value) if key == "reminder_days" else value)
    now = utcnow()
    with_photos: list[tuple[int, Item]] = []
    for start in range(0, len(plan.items), BATCH):
        batch = plan.items[start : start + BATCH]
        rows = [_entry(user, item, ids, now) for item in batch]
        session.add_all(rows)
        await session.flush()
        with_photos += [
            (row.id or 0, item) for row, item in zip(rows, batch, strict=True) if item.photos
        ]
        session.add_all(
            EntryTag(entry_id=row.id or 0, tag=t, user_id=user.id)
            for row in rows
            for t in row.tag_list
        )
        await session.flush()
        if progress is not None:
            await progress(start + len(batch), len(plan.items))
    await session.commit()
    if with_photos:
        await _import_photos(session, user, plan, with_photos, media, settings)
    return len(plan.items)


async def _import_photos(
    session: AsyncSession,
    user: User,
    plan: Plan,
    wanted: list[tuple[int, Item]],
    media: "Storage | None",
    settings: "Settings | None",
) -> None:
    from app.config import settings as configured
    from app.services import photos
    from app.storage import storage_for

    settings = settings or configured
    media = media or storage_for(settings)
    ours = plan.source == "SuccessDiary"
    for entry_id, item in wanted:
        for path, alt in item.photos:
            data = plan.media.get(path)
            entry = await session.get(Entry, entry_id)
            if data is None or entry is None:
                continue
            try:
                await photos.add_photo(
                    session=session,
                    user=user,
                    entry=entry,
                    data=data,
                    filename=path,
                    alt=alt,
                    storage=media,
                    settings=settings,
                    keep_bytes=ours,
                )
            except photos.PhotoProblem:
                continue


def _entry(user: User, item: Item, ids: dict[str, int | None], now: datetime) -> Entry:
    data = item.data
    assert data.day is not None
    body = data.body or ""
    return Entry(
        user_id=user.id,
        category_id=ids.get(category_key(item.category)) if item.category else None,
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
