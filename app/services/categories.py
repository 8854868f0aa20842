"""Categories a user owns: defaults at sign-up, create, rename, recolour, merge, delete.

Deleting or merging never loses an entry: entries move to the target, or become uncategorised.
"""

from collections import Counter
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.models import Category, Entry, User
from app.schemas import ID_MAX
from app.services import Problem

# PostgreSQL's deadlock_detected and serialization_failure: the transaction can simply rerun.
RETRYABLE = frozenset({"40P01", "40001"})
DEFAULTS = [
    ("Work", "#2563eb"),
    ("Health", "#16a34a"),
    ("Learning", "#9333ea"),
    ("Relationships", "#db2777"),
    ("Personal", "#ea580c"),
    ("Money", "#ca8a04"),
]
# Colours a new category takes when none is chosen: the defaults' first, then more that stay
# apart from them (and from each other) in charts.
PALETTE = [colour for _, colour in DEFAULTS] + [
    "#0d9488",
    "#dc2626",
    "#4f46e5",
    "#0891b2",
    "#65a30d",
    "#c026d3",
]
# Slate greys mark "Uncategorised" in charts (#94a3b8) and were the form's default (#64748b):
# a new category never takes one, or it could not be told from wins without a category.
GREYS = {"#64748b", "#94a3b8"}


def category_key(name: str) -> str:
    """Names that differ only by case or spaces name one category."""
    return " ".join(name.split()).lower()


@dataclass
class CategoryWithCount:
    category: Category
    entry_count: int


def add_defaults(session: AsyncSession, user: User) -> None:
    session.add_all(
        Category(user_id=user.id, name=name, colour=colour) for name, colour in DEFAULTS
    )


async def list_categories(*, session: AsyncSession, user: User) -> list[CategoryWithCount]:
    live = (col(Entry.category_id) == Category.id) & col(Entry.deleted_at).is_(None)
    stmt = (
        select(Category, func.count(col(Entry.id)))
        .outerjoin(Entry, live)
        .where(col(Category.user_id) == user.id)
        .group_by(col(Category.id))
        .order_by(func.lower(Category.name))
    )
    return [CategoryWithCount(c, n) for c, n in (await session.execute(stmt)).all()]


async def get_category(
    *, session: AsyncSession, user: User, category_id: int, lock: bool = False
) -> Category | None:
    """The user's category, or None (also for another user's id, or one no row can have).

    With `lock`, for filing an entry under it, the row stays locked until the transaction
    ends, so a merge or delete running meanwhile waits and then moves the entry along; one
    that ran first has removed the row, and the answer is None. PostgreSQL takes a share
    lock; SQLite, with one writer at a time, is locked by a write that changes nothing.
    """
    if not 0 < category_id <= ID_MAX:
        return None
    mine = (col(Category.id) == category_id, col(Category.user_id) == user.id)
    if lock and session.get_bind().dialect.name == "sqlite":
        touch = (
            update(Category).where(*mine).values(id=col(Category.id)).returning(col(Category.id))
        )
        if (await session.execute(touch)).first() is None:
            return None
    stmt = select(Category).where(*mine)
    if lock:
        stmt = stmt.with_for_update(read=True)
    return (await session.execute(stmt)).scalar_one_or_none()


async def _name_taken(session: AsyncSession, user: User, name: str, other_than: int | None) -> bool:
    stmt = select(col(Category.id)).where(
        col(Category.user_id) == user.id, func.lower(Category.name) == name.lower()
    )
    if other_than is not None:
        stmt = stmt.where(col(Category.id) != other_than)
    return (await session.execute(stmt)).first() is not None


async def next_colour(session: AsyncSession, user: User) -> str:
    """The palette colour the user's categories use least (the earliest of those on a tie)."""
    stmt = select(func.lower(Category.colour)).where(col(Category.user_id) == user.id)
    used = Counter((await session.execute(stmt)).scalars())
    return min(PALETTE, key=lambda colour: used[colour])


async def create_category(
    *, session: AsyncSession, user: User, name: str, colour: str | None = None
) -> Category:
    """A new category; without a colour (or with a grey one) it takes next_colour()."""
    if await _name_taken(session, user, name, None):
        raise Problem("name", f"You already have a category called {name}.")
    if colour is None or colour.lower() in GREYS:
        colour = await next_colour(session, user)
    category = Category(user_id=user.id, name=name, colour=colour)
    session.add(category)
    await _commit_name(session, user, name)
    return category


async def _commit_name(session: AsyncSession, user: User, name: str) -> None:
    """Commit; a name made meanwhile by another request (the unique index on the lower-cased
    name, which the check above cannot see) is the same answer as one made before."""
    try:
        await session.commit()
    except IntegrityError:
        await _rollback(session, user)
        raise Problem("name", f"You already have a category called {name}.") from None


async def _rollback(session: AsyncSession, user: User) -> None:
    """Roll back, and reload the user the request's other steps still read (a rollback
    expires every object of the session)."""
    await session.rollback()
    await session.refresh(user)


async def update_category(
    *, session: AsyncSession, user: User, category: Category, name: str | None, colour: str | None
) -> Category:
    if name is not None and await _name_taken(session, user, name, category.id):
        raise Problem("name", f"You already have a category called {name}.")
    if name is not None:
        category.name = name
    if colour is not None:
        category.colour = colour
    await _commit_name(session, user, name or category.name)
    return category


async def merge_category(
    *, session: AsyncSession, user: User, category: Category, into_id: int
) -> Category:
    """Move every entry of `category` into the user's category `into_id`, then delete it.

    Both rows are locked first (in id order, so two merges cannot wait on each other): an
    entry being filed under the category meanwhile is moved too, never left uncategorised.
    A deadlock PostgreSQL breaks anyway is retried once.
    """
    source_id = category.id
    assert source_id is not None
    try:
        return await _merge(session, user, source_id, into_id)
    except OperationalError as exc:
        if getattr(exc.orig, "sqlstate", None) not in RETRYABLE:
            raise
        await _rollback(session, user)
        return await _merge(session, user, source_id, into_id)


async def _locked(session: AsyncSession, user: User, ids: list[int]) -> dict[int, Category]:
    """The user's categories among `ids`, locked for update (in id order) until commit."""
    stmt = (
        select(Category)
        .where(col(Category.user_id) == user.id, col(Category.id).in_(ids))
        .order_by(col(Category.id))
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return {c.id: c for c in (await session.execute(stmt)).scalars() if c.id is not None}


async def _merge(session: AsyncSession, user: User, source_id: int, into_id: int) -> Category:
    locked = await _locked(session, user, [source_id, into_id])
    source, target = locked.get(source_id), locked.get(into_id)
    if target is None or source is None or target.id == source_id:
        raise Problem("merge_into", "Choose another of your categories to merge into.")
    await _move_entries(session, user, source, target.id)
    await session.delete(source)
    await session.commit()
    return target


async def delete_category(*, session: AsyncSession, user: User, category: Category) -> None:
    """Delete the category; its entries stay, uncategorised. Locked first, as for a merge:
    an entry being filed under it meanwhile is written first, then uncategorised with the
    others (waiting on each other's locks instead ends in a deadlock on PostgreSQL)."""
    assert category.id is not None
    for locked in (await _locked(session, user, [category.id])).values():  # gone: nothing to do
        await _move_entries(session, user, locked, None)
        await session.delete(locked)
    await session.commit()


async def _move_entries(
    session: AsyncSession, user: User, source: Category, target: int | None
) -> None:
    await session.execute(
        update(Entry)
        .where(col(Entry.user_id) == user.id, col(Entry.category_id) == source.id)
        .values(category_id=target)
    )
