"""Diary entries: write, change, delete with undo, list by day with filters, ranked search.

Every query filters by the owner here; a missing or foreign id is simply not found.
The list and search each run as one SQL statement (entries, their category, highlights).
"""

import base64
import binascii
import re
import unicodedata
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from babel.numbers import get_currency_precision
from markupsafe import Markup, escape
from sqlalchemy import (
    ColumnElement,
    Select,
    delete,
    exists,
    func,
    literal_column,
    select,
    table,
    text,
    update,
)
from sqlalchemy import column as sql_column
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import col

from app.markdown import render
from app.models import Category, Entry, EntryTag, Photo, User
from app.models.base import utcnow
from app.schemas import (
    ID_MAX,
    CategoryRef,
    EntryCreate,
    EntryFields,
    EntryRead,
    EntryUpdate,
    parse_day,
)
from app.services import Problem
from app.services.categories import get_category
from app.services.photos import keys_of_entries, photo_read, photos_for, remove_keys
from app.services.text import MARK_END, MARK_START, parse_tags, plain_text

if TYPE_CHECKING:
    from app.storage import Storage

UNDO_WINDOW = timedelta(minutes=10)
PAGE_SIZE = 20
RANKED = 500  # a search ranks the newest this many matches; older ones follow, newest first
COUNT_CAP = 1_000  # "1,000+ wins match": counting further costs more than it tells
PREFIX_TERMS = 30  # a last word that begins more index terms than this: FTS5 expands it
FTS = table("entry_fts", sql_column("rowid"))
FTS_TABLE: ColumnElement[str] = literal_column("entry_fts")
PG_SEARCH: ColumnElement[str] = literal_column("entry.search")
PG_HEADLINE = f"StartSel={MARK_START},StopSel={MARK_END},HighlightAll=true"
PG_SNIPPET = PG_HEADLINE.replace("HighlightAll=true", "MaxWords=30,MinWords=12,MaxFragments=2")


class EntryChanged(Exception):
    """The entry changed since the version the writer read (an API If-Match, the edit form's
    hidden field): nothing was written."""


@dataclass
class Filters:
    q: str = ""
    category_id: int | None = None
    tag: str | None = None
    mood: int | None = None
    date_from: date | None = None
    date_to: date | None = None

    @property
    def active(self) -> bool:
        return any(v not in (None, "") for v in vars(self).values())


@dataclass
class EntryView:
    """An entry as shown: with its category and, in search results, highlighted text."""

    entry: Entry
    category: Category | None
    title_html: Markup | None = None
    snippet_html: Markup | None = None
    photos: list[Photo] = field(default_factory=list)

    @property
    def amount(self) -> Decimal | None:
        return from_minor(self.entry.amount_minor, self.entry.currency)

    def read(self) -> EntryRead:
        """The entry as the API answers it."""
        entry, category = self.entry, self.category
        assert entry.id is not None
        return EntryRead(
            id=entry.id,
            day=entry.day,
            title=entry.title,
            body=entry.body,
            body_html=entry.body_html,
            category=CategoryRef(id=category.id, name=category.name, colour=category.colour)
            if category and category.id is not None
            else None,
            mood=entry.mood,
            tags=entry.tag_list,
            amount=self.amount,
            currency=entry.currency,
            created_at=entry.created_at,
            updated_at=entry.updated_at,
            photos=[photo_read(p) for p in self.photos],
        )


@dataclass
class Page:
    items: list[EntryView]
    next_cursor: str | None
    total: int | None = None  # search results: how many match (at most COUNT_CAP)
    more: bool = False  # more than COUNT_CAP match


def today_for(user: User) -> date:
    return datetime.now(ZoneInfo(user.timezone)).date()


def to_minor(amount: Decimal, currency: str) -> int:
    places = get_currency_precision(currency)
    minor = amount.scaleb(places)
    if minor != minor.to_integral_value():
        unit = "decimal place" if places == 1 else "decimal places"
        raise Problem("amount", f"Use at most {places} {unit} for {currency}.")
    if abs(minor) >= 10**15:
        raise Problem("amount", "That amount is too large.")
    return int(minor)


def from_minor(minor: int | None, currency: str | None) -> Decimal | None:
    if minor is None or currency is None:
        return None
    return Decimal(minor).scaleb(-get_currency_precision(currency))


async def create_entry(*, session: AsyncSession, user: User, data: EntryCreate) -> Entry:
    entry = Entry(user_id=user.id, day=data.day or today_for(user), title=data.title)
    await _apply(session, user, entry, data, set(data.model_fields_set) | {"title", "body", "tags"})
    session.add(entry)
    await session.flush()
    await _save_tags(session, user, entry)
    await session.commit()
    return entry


async def update_entry(
    *,
    session: AsyncSession,
    user: User,
    entry: Entry,
    data: EntryUpdate,
    versions: Collection[int] | None = None,
) -> Entry:
    """Change the sent fields. With `versions` (the ones the writer read), refuse with
    EntryChanged unless the stored version is one of them."""
    await _apply(session, user, entry, data, set(data.model_fields_set))
    entry.updated_at = utcnow()
    await _claim(session, entry, versions)
    await _save_tags(session, user, entry)
    await session.commit()
    return entry


async def _claim(session: AsyncSession, entry: Entry, versions: Collection[int] | None) -> None:
    """Bump the entry's version, on condition that it is still one the writer read.

    One conditional UPDATE before the change itself is written: it takes the row's lock, so
    two saves based on the same version cannot both pass, on SQLite or PostgreSQL. A refused
    change is dropped from the session (nothing was written), so the stored entry reads fresh.
    """
    stmt = (
        update(Entry)
        .where(col(Entry.id) == entry.id)
        .values(version=col(Entry.version) + 1)
        .returning(col(Entry.version))
        .execution_options(synchronize_session=False)
    )
    if versions is not None:
        stmt = stmt.where(col(Entry.version).in_(list(versions)))
    with session.no_autoflush:
        version = (await session.execute(stmt)).scalar_one_or_none()
    if version is None:
        session.expunge(entry)
        raise EntryChanged
    set_committed_value(entry, "version", version)


async def _apply(
    session: AsyncSession, user: User, entry: Entry, data: EntryFields, fields: set[str]
) -> None:
    """Check the sent fields (some need the database or each other), then copy them over.

    Nothing on the entry changes unless every check passes.
    """
    wanted = data.category_id if "category_id" in fields else None
    if wanted is not None and not await get_category(
        session=session, user=user, category_id=wanted, lock=True
    ):
        raise Problem("category_id", "Choose one of your categories.")
    changes: dict[str, object] = {
        name: getattr(data, name)
        for name in ("day", "title", "category_id", "mood")
        if name in fields and not (name in ("day", "title") and getattr(data, name) is None)
    }
    body = (data.body or "") if "body" in fields else entry.body
    if "body" in fields:
        changes |= {"body": body, "body_html": render(body)}
    if fields & {"tags", "body"}:
        given = data.tags if "tags" in fields and data.tags is not None else entry.tag_list
        try:
            changes["tags"] = " ".join(parse_tags(given, body))
        except ValueError as exc:
            raise Problem("tags", str(exc)) from exc
    if fields & {"amount", "currency"}:
        changes |= _money(user, entry, data, fields)
    for name, value in changes.items():
        setattr(entry, name, value)


def _money(user: User, entry: Entry, data: EntryFields, fields: set[str]) -> dict[str, object]:
    amount = data.amount if "amount" in fields else from_minor(entry.amount_minor, entry.currency)
    if amount is None:
        return {"amount_minor": None, "currency": None}
    currency = (data.currency if "currency" in fields else entry.currency) or user.base_currency
    return {"amount_minor": to_minor(amount, currency), "currency": currency}


async def _save_tags(session: AsyncSession, user: User, entry: Entry) -> None:
    await session.execute(delete(EntryTag).where(col(EntryTag.entry_id) == entry.id))
    assert entry.id is not None
    session.add_all(EntryTag(entry_id=entry.id, tag=tag, user_id=user.id) for tag in entry.tag_list)


async def get_entry(
    *, session: AsyncSession, user: User, entry_id: int, deleted: bool = False
) -> Entry | None:
    """The user's entry (or, with deleted=True, one deleted recently enough to undo)."""
    if not 0 < entry_id <= ID_MAX:
        return None
    stmt = select(Entry).where(col(Entry.id) == entry_id, col(Entry.user_id) == user.id)
    gone = col(Entry.deleted_at).is_not(None) if deleted else col(Entry.deleted_at).is_(None)
    return (await session.execute(stmt.where(gone))).scalar_one_or_none()


async def get_entry_view(*, session: AsyncSession, user: User, entry_id: int) -> EntryView | None:
    if not 0 < entry_id <= ID_MAX:
        return None
    stmt = visible_entries(user).where(col(Entry.id) == entry_id)
    row = (await session.execute(stmt)).first()
    return (await with_photos(session, [EntryView(row[0], row[1])]))[0] if row else None


async def with_photos(session: AsyncSession, views: list[EntryView]) -> list[EntryView]:
    """The views with their photos, in one query, and only when one of them has some (so a
    diary without photos keeps its query budget)."""
    ids = [v.entry.id for v in views if v.entry.photo_count and v.entry.id is not None]
    if ids:
        found = await photos_for(session, ids)
        for view in views:
            view.photos = found.get(view.entry.id or 0, [])
    return views


async def delete_entry(
    *, session: AsyncSession, user: User, entry: Entry, versions: Collection[int] | None = None
) -> None:
    """Hide the entry at once; it can be restored for UNDO_WINDOW, then purge_deleted removes
    it (and its tags and search index rows) for good. With `versions`, as update_entry."""
    entry.deleted_at = utcnow()
    await _claim(session, entry, versions)
    await session.commit()


class RestoreExpired(Exception):
    """The entry was deleted longer ago than the undo window allows."""


async def restore_entry(
    *, session: AsyncSession, entry: Entry, now: datetime | None = None
) -> None:
    """Undo a delete within UNDO_WINDOW; later it is refused (RestoreExpired), whether or not
    the purge has run yet. One conditional UPDATE, so a purge running meanwhile cannot race it."""
    cutoff = (now or utcnow()) - UNDO_WINDOW
    result = await session.execute(
        update(Entry)
        .where(col(Entry.id) == entry.id, col(Entry.deleted_at) >= cutoff)
        .values(deleted_at=None, version=col(Entry.version) + 1)
        .returning(col(Entry.version))
        .execution_options(synchronize_session=False)
    )
    version = result.scalar_one_or_none()
    if version is None:  # nothing was written
        raise RestoreExpired
    await session.commit()
    set_committed_value(entry, "deleted_at", None)
    set_committed_value(entry, "version", version)


async def purge_deleted(
    *, session: AsyncSession, now: datetime | None = None, media: "Storage | None" = None
) -> int:
    """Remove for good every user's entries deleted longer ago than UNDO_WINDOW; their tags
    go with them (ON DELETE CASCADE) and so does their search index row (SQLite's FTS delete
    trigger; PostgreSQL's tsvector lives in the row). Idempotent, so any number of workers
    may run it at once; the periodic task in app.main calls it.

    Their photos' rows go by cascade too, and their files after the commit (from `media`,
    else the configured storage): a crash in between leaves orphans for `media check`."""
    cutoff = (now or utcnow()) - UNDO_WINDOW
    with_files = select(col(Entry.id)).where(
        col(Entry.deleted_at) < cutoff, col(Entry.photo_count) > 0
    )
    doomed = [i for i in (await session.execute(with_files)).scalars() if i is not None]
    keys = await keys_of_entries(session, doomed)
    result = await session.execute(
        delete(Entry)
        .where(col(Entry.deleted_at) < cutoff)
        .execution_options(synchronize_session=False)
    )
    await session.commit()
    if keys:
        await remove_keys(media or _configured_storage(), keys)
    return _affected(result)


def _configured_storage() -> "Storage":
    from app.config import settings
    from app.storage import storage_for

    return storage_for(settings)


def _affected(result: object) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


async def category_choices(*, session: AsyncSession, user: User) -> list[Category]:
    """The user's categories for an entry form or filter, by name: no counts, so no scan of
    the user's entries (categories.list_categories counts them for the categories page)."""
    stmt = (
        select(Category)
        .where(col(Category.user_id) == user.id)
        .order_by(func.lower(Category.name), col(Category.id))
    )
    return list((await session.execute(stmt)).scalars())


def visible_entries(user: User) -> Select[tuple[Entry, Category]]:
    return (
        select(Entry, Category)
        .outerjoin(Category, col(Entry.category_id) == col(Category.id))
        .where(col(Entry.user_id) == user.id, col(Entry.deleted_at).is_(None))
    )


def _filtered(stmt: Select, user: User, filters: Filters) -> Select:
    if filters.category_id is not None:  # an id no row can have matches nothing
        wanted = filters.category_id if 0 < filters.category_id <= ID_MAX else -1
        stmt = stmt.where(col(Entry.category_id) == wanted)
    if filters.mood is not None:
        stmt = stmt.where(col(Entry.mood) == filters.mood)
    if filters.date_from is not None:
        stmt = stmt.where(col(Entry.day) >= filters.date_from)
    if filters.date_to is not None:
        stmt = stmt.where(col(Entry.day) <= filters.date_to)
    if filters.tag:
        tagged = exists().where(
            col(EntryTag.entry_id) == col(Entry.id),
            col(EntryTag.user_id) == user.id,
            col(EntryTag.tag) == filters.tag.lstrip("#").lower(),
        )
        stmt = stmt.where(tagged)
    return stmt


async def list_entries(
    *,
    session: AsyncSession,
    user: User,
    filters: Filters,
    cursor: str | None = None,
    limit: int = PAGE_SIZE,
) -> Page:
    """Newest first by day; with `filters.q`, ranked full-text search with highlights."""
    terms = search_terms(filters.q)
    if terms:
        return await _search(session, user, filters, terms, cursor, limit)
    stmt = _filtered(visible_entries(user), user, filters)
    if cursor:
        day, entry_id = _decode_day_cursor(cursor)
        stmt = stmt.where(
            (col(Entry.day) < day) | ((col(Entry.day) == day) & (col(Entry.id) < entry_id))
        )
    stmt = stmt.order_by(col(Entry.day).desc(), col(Entry.id).desc()).limit(limit + 1)
    rows = (await session.execute(stmt)).all()
    items = await with_photos(
        session, [EntryView(entry, category) for entry, category in rows[:limit]]
    )
    more = len(rows) > limit
    last = items[-1].entry if items else None
    next_cursor = _encode(f"d:{last.day.isoformat()}:{last.id}") if more and last else None
    return Page(items, next_cursor)


def search_terms(q: str) -> list[str]:
    return re.findall(r"\w+", q)[:20]


def owner_term(user: User) -> str:
    """The index term that finds a user's rows in SQLite's full-text index: the first group of
    their id (FTS5 splits the id into five terms, and a phrase of all five made every ranking
    count that phrase in the whole index). Another user sharing those 32 bits only costs a
    look more: `matches` also keeps entries of this user alone."""
    return str(user.id).split("-")[0]


async def _search(
    session: AsyncSession,
    user: User,
    filters: Filters,
    terms: list[str],
    cursor: str | None,
    limit: int,
) -> Page:
    """Ranked search in a bounded window: the newest RANKED matches are ranked (bm25 or
    ts_rank), best first; older matches follow newest first. Highlights are made for the
    page's rows only and the count stops past COUNT_CAP, so a word in most entries costs
    about what a rare one does, whatever the size of the diary (docs/architecture.md)."""
    offset = _decode_offset_cursor(cursor) if cursor else 0
    sqlite = session.get_bind().dialect.name == "sqlite"
    search: _SQLiteSearch | _PostgresSearch = (
        await _SQLiteSearch.make(session, user, terms)
        if sqlite
        else _PostgresSearch(filters.q, terms)
    )
    matches = search.matches(_filtered(select(col(Entry.id)), user, filters), user)
    # How many match (up to COUNT_CAP + 1), in the statement that ranks the window; newest
    # first, as the window, so SQLite walks the index and stops (not a MATCH per entry).
    capped = search.newest(matches).limit(COUNT_CAP + 1).subquery()
    counted = select(func.count()).select_from(capped)
    ids: list[int] = []
    total = RANKED  # a cursor past the window came from a full one
    if offset < RANKED:
        scored = matches.add_columns(search.score().label("score"))
        window = search.newest(scored).limit(RANKED).subquery()
        ranked = (
            select(window.c.id, counted.scalar_subquery())
            .order_by(window.c.score, window.c.id.desc())
            .offset(offset)
            .limit(limit + 1)
        )
        found = (await session.execute(ranked)).all()
        ids = [i for i, _ in found]
        total = found[0][1] if found else 0
    if len(ids) <= limit and total >= RANKED:  # the older matches, newest first
        older = search.newest(matches).offset(RANKED + max(0, offset - RANKED))
        ids += await session.scalars(older.limit(limit + 1 - len(ids)))
    shown = ids[:limit]
    rows = {e.id: (e, c, t, h) for e, c, t, h in await session.execute(search.rows(user, shown))}
    items = [
        EntryView(e, c, _marked(title), _marked(plain_text(snippet)))
        for e, c, title, snippet in (rows[i] for i in shown if i in rows)
    ]
    next_cursor = _encode(f"o:{offset + limit}") if len(ids) > limit else None
    await with_photos(session, items)
    return Page(items, next_cursor, total=min(total, COUNT_CAP), more=total > COUNT_CAP)


class _SQLiteSearch:
    """FTS5 with porter stemming: every word must match, the last one also as a prefix. The
    prefix is expanded to the index's own terms first (fts5vocab): FTS5 merges a prefix's
    posting lists on every query, which cost more than the rest of the search."""

    def __init__(self, owner: str, words: str) -> None:
        self.match = FTS_TABLE.op("MATCH")(f'user_id:"{owner}" AND {words}')
        # A page's rows are the user's already: their highlights need only the words (FTS5
        # looks each row up in every phrase's list, and the owner's is as long as the diary).
        self.words = FTS_TABLE.op("MATCH")(words)

    @classmethod
    async def make(cls, session: AsyncSession, user: User, terms: list[str]) -> "_SQLiteSearch":
        *whole, last = terms
        words = [f'"{t}"' for t in whole]
        prefix = "".join(
            c for c in unicodedata.normalize("NFKD", last.lower()) if not unicodedata.combining(c)
        )
        found = list(
            await session.scalars(
                text(
                    "SELECT term FROM entry_fts_terms WHERE term >= :low AND term < :high LIMIT :n"
                ),
                {"low": prefix, "high": prefix + "\U0010ffff", "n": PREFIX_TERMS + 1},
            )
        )
        if len(found) > PREFIX_TERMS:  # a short prefix: FTS5's own expansion
            words.append(f'"{last}"*')
        else:
            # The word itself is among the terms when the index holds it as typed: once is
            # enough (bm25 counts each phrase's rows in the whole index, highlight marks it).
            more = (f'"{t}"' for t in found if t != prefix)
            words.append("(" + " OR ".join([f'"{last}"', *more]) + ")")
        return cls(owner_term(user), " AND ".join(words))

    def matches(self, stmt: Select, user: User) -> Select:
        return stmt.join(FTS, FTS.c.rowid == col(Entry.id)).where(
            self.match, col(Entry.user_id) == user.id, col(Entry.deleted_at).is_(None)
        )

    def score(self) -> ColumnElement[float]:
        return func.bm25(FTS_TABLE, 10.0, 1.0, 5.0, 0.0)  # lower is better

    def newest(self, stmt: Select) -> Select:
        return stmt.order_by(FTS.c.rowid.desc())

    def rows(self, user: User, ids: list[int]) -> Select:
        """The entries of a page with their highlighted title and snippet."""
        return (
            visible_entries(user)
            .join(FTS, FTS.c.rowid == col(Entry.id))
            .where(self.words, FTS.c.rowid.in_(ids))
            .add_columns(
                func.highlight(FTS_TABLE, 0, MARK_START, MARK_END),
                func.snippet(FTS_TABLE, 1, MARK_START, MARK_END, "…", 24),
            )
        )


class _PostgresSearch:
    """tsvector ranking: plain words match as you type (the last a prefix), else websearch."""

    def __init__(self, q: str, terms: list[str]) -> None:
        self.query: ColumnElement[str]
        if re.fullmatch(r"[\w\s]+", q):
            *whole, last = terms
            # The last word whole or as a prefix: the same matches as `last:*` alone, but the
            # planner can estimate a whole word from its statistics (a prefix alone gets a
            # fixed 2%), so a common word walks the user's newest entries and stops.
            self.query = func.to_tsquery("english", " & ".join([*whole, f"({last} | {last}:*)"]))
        else:
            self.query = func.websearch_to_tsquery("english", q[:500])

    def matches(self, stmt: Select, user: User) -> Select:
        return stmt.where(
            PG_SEARCH.op("@@")(self.query),
            col(Entry.user_id) == user.id,
            col(Entry.deleted_at).is_(None),
        )

    def score(self) -> ColumnElement[float]:
        return -func.ts_rank(PG_SEARCH, self.query)  # lower is better, as bm25's

    def newest(self, stmt: Select) -> Select:
        return stmt.order_by(col(Entry.day).desc(), col(Entry.id).desc())

    def rows(self, user: User, ids: list[int]) -> Select:
        """The entries of a page with their highlighted title and snippet."""
        return (
            visible_entries(user)
            .where(col(Entry.id).in_(ids))
            .add_columns(
                func.ts_headline("english", col(Entry.title), self.query, PG_HEADLINE),
                func.ts_headline("english", col(Entry.body), self.query, PG_SNIPPET),
            )
        )


def _marked(text: str | None) -> Markup | None:
    """Escape the text, then turn the search markers into <mark> elements."""
    if not text:
        return None
    html = str(escape(text)).replace(MARK_START, "<mark>").replace(MARK_END, "</mark>")
    return Markup(html)  # noqa: S704 (escaped above; only our own <mark> tags are added)


def _encode(value: str) -> str:
    return base64.urlsafe_b64encode(value.encode()).decode().rstrip("=")


def _decode(cursor: str) -> str:
    try:
        return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise Problem("cursor", "This page link is not valid any more.") from exc


def _decode_day_cursor(cursor: str) -> tuple[date, int]:
    """A cursor is text anyone can forge: its day and id must be ones a row can hold."""
    kind, _, rest = _decode(cursor).partition(":")
    day, _, entry_id = rest.partition(":")
    try:
        if kind != "d" or not entry_id.isdigit() or not 0 < int(entry_id) <= ID_MAX:
            raise ValueError
        return parse_day(day), int(entry_id)
    except ValueError as exc:
        raise Problem("cursor", "This page link is not valid any more.") from exc


def _decode_offset_cursor(cursor: str) -> int:
    kind, _, offset = _decode(cursor).partition(":")
    if kind != "o" or not offset.isdigit() or int(offset) > 100_000:
        raise Problem("cursor", "This page link is not valid any more.")
    return int(offset)
