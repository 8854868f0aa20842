"""JSON API for categories: list with counts, create, rename/recolour/merge, delete."""

from typing import Annotated, Any

from fastapi import APIRouter, Path, Response, status

from app.deps import CurrentUser, SessionDep
from app.models import Category
from app.schemas import ID_MAX, CategoryCreate, CategoryRead, CategoryUpdate
from app.services import Problem, categories
from app.web import invalid, owned_or_404

router = APIRouter(prefix="/categories", tags=["categories"])
CategoryId = Annotated[int, Path(ge=1, le=ID_MAX)]
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "CATEGORY_NOT_FOUND: no such category among yours"}
}


def category_read(category: Category, count: int = 0) -> CategoryRead:
    assert category.id is not None
    return CategoryRead(
        id=category.id, name=category.name, colour=category.colour, entry_count=count
    )


async def _owned(session: SessionDep, user: CurrentUser, category_id: int) -> Category:
    category = await categories.get_category(session=session, user=user, category_id=category_id)
    return owned_or_404(category, "CATEGORY_NOT_FOUND")


@router.get("")
async def list_categories(user: CurrentUser, session: SessionDep) -> list[CategoryRead]:
    """Your categories, by name, with how many entries each holds."""
    rows = await categories.list_categories(session=session, user=user)
    return [category_read(row.category, row.entry_count) for row in rows]


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_category(
    body: CategoryCreate, user: CurrentUser, session: SessionDep
) -> CategoryRead:
    try:
        category = await categories.create_category(
            session=session, user=user, name=body.name, colour=body.colour
        )
    except Problem as exc:
        raise invalid(exc) from exc
    return category_read(category)


@router.patch("/{category_id}", responses=NOT_FOUND)
async def update_category(
    category_id: CategoryId, body: CategoryUpdate, user: CurrentUser, session: SessionDep
) -> CategoryRead:
    """Rename or recolour; with `merge_into`, move every entry there and delete this category."""
    category = await _owned(session, user, category_id)
    try:
        if body.merge_into is not None:
            category = await categories.merge_category(
                session=session, user=user, category=category, into_id=body.merge_into
            )
        else:
            await categories.update_category(
                session=session, user=user, category=category, name=body.name, colour=body.colour
            )
    except Problem as exc:
        raise invalid(exc) from exc
    return category_read(category)


@router.delete("/{category_id}", status_code=204, response_class=Response, responses=NOT_FOUND)
async def delete_category(
    category_id: CategoryId, user: CurrentUser, session: SessionDep
) -> Response:
    """Delete the category; its entries stay, uncategorised."""
    category = await _owned(session, user, category_id)
    await categories.delete_category(session=session, user=user, category=category)
    return Response(status_code=204)
