"""Categories a user owns: defaults at sign-up, create, rename, recolour, merge, delete.

Deleting or merging never loses an entry: entries move to the target, or become uncategorised.
"""

from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.models import Category, Entry, User
from app.schemas import ID_MAX

DEFAULTS = [
    ("Work", "#2563eb"),
    ("Health", "#16a34a"),
    ("Learning", "#9333ea"),
    ("Relationships", "#db2777"),
    ("Personal", "#ea580c"),
    ("Money", "#ca8a04"),
]


class CategoryProblem(Exception):
    """A change that cannot be made, with the field and a sentence saying why."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


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


async def get_category(*, session: AsyncSession, user: User, category_id: int) -> Category | None:
    """The user's category, or None (also for another user's id, or one no row can have)."""
    if not 0 < category_id <= ID_MAX:
        return None
    stmt = select(Category).where(col(Category.id) == category_id, col(Category.user_id) == user.id)
    return (await session.execute(stmt)).scalar_one_or_none()


async def _name_taken(session: AsyncSession, user: User, name: str, other_than: int | None) -> bool:
    stmt = select(col(Category.id)).where(
        col(Category.user_id) == user.id, func.lower(Category.name) == name.lower()
    )
    if other_than is not None:
        stmt = stmt.where(col(Category.id) != other_than)
    return (await session.execute(stmt)).first() is not None


async def create_category(*, session: AsyncSession, user: User, name: str, colour: str) -> Category:
    if await _name_taken(session, user, name, None):
        raise CategoryProblem("name", f"You already have a category called {name}.")
    category = Category(user_id=user.id, name=name, colour=colour)
    session.add(category)
    await session.commit()
    return category


async def update_category(
    *, session: AsyncSession, user: User, category: Category, name: str | None, colour: str | None
) -> Category:
    if name is not None and await _name_taken(session, user, name, category.id):
        raise CategoryProblem("name", f"You already have a category called {name}.")
    if name is not None:
        category.name = name
    if colour is not None:
        category.colour = colour
    await session.commit()
    return category


async def merge_category(
    *, session: AsyncSession, user: User, category: Category, into_id: int
) -> Category:
    """Move every entry of `category` into the user's category `into_id`, then delete it."""
    target = await get_category(session=session, user=user, category_id=into_id)
    if target is None or target.id == category.id:
        raise CategoryProblem("merge_into", "Choose another of your categories to merge into.")
    await _move_entries(session, user, category, target.id)
    await session.delete(category)
    await session.commit()
    return target


async def delete_category(*, session: AsyncSession, user: User, category: Category) -> None:
    """Delete the category; its entries stay, uncategorised."""
    await _move_entries(session, user, category, None)
    await session.delete(category)
    await session.commit()


async def _move_entries(
    session: AsyncSession, user: User, source: Category, target: int | None
) -> None:
    await session.execute(
        update(Entry)
        .where(col(Entry.user_id) == user.id, col(Entry.category_id) == source.id)
        .values(category_id=target)
    )
