"""The categories page: create, rename and recolour, merge, delete (entries are never lost)."""

from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Request
from pydantic import ValidationError
from starlette.responses import Response

from app.deps import SessionDep
from app.forms import validation_errors
from app.htmx import is_htmx, redirect
from app.models import Category, User
from app.schemas import CategoryCreate, CategoryUpdate
from app.services import categories
from app.services.categories import CategoryProblem
from app.templating import flash, render
from app.web import PageUser

router = APIRouter(include_in_schema=False)
Field = Annotated[str, Form()]


async def _page(
    request: Request,
    session: SessionDep,
    user: User,
    errors: dict[Any, Any] | None = None,
    status_code: int = 200,
) -> Response:
    rows = await categories.list_categories(session=session, user=user)
    ctx = {"user": user, "rows": rows, "errors": errors or {}, "values": {}}
    return render(
        request,
        "categories/page.html",
        ctx,
        partial="categories/_list.html",
        status_code=status_code,
    )


async def _owned(session: SessionDep, user: User, category_id: int) -> Category:
    category = await categories.get_category(session=session, user=user, category_id=category_id)
    if category is None:
        raise HTTPException(404)
    return category


async def _done(request: Request, session: SessionDep, user: User, message: str) -> Response:
    """HTMX gets the updated list; a plain form is redirected with the message."""
    if is_htmx(request):
        return await _page(request, session, user)
    flash(request, message)
    return redirect(request, "/categories")


@router.get("/categories")
async def categories_page(request: Request, user: PageUser, session: SessionDep) -> Response:
    return await _page(request, session, user)


@router.post("/categories")
async def create(
    request: Request,
    user: PageUser,
    session: SessionDep,
    name: Field = "",
    colour: Field = "#64748b",
) -> Response:
    try:
        data = CategoryCreate(name=name[:200], colour=colour[:20])
        category = await categories.create_category(
            session=session, user=user, name=data.name, colour=data.colour
        )
    except ValidationError as exc:
        return await _page(request, session, user, {"new": validation_errors(exc)}, 422)
    except CategoryProblem as exc:
        return await _page(request, session, user, {"new": {exc.field: exc.message}}, 422)
    return await _done(request, session, user, f"Category {category.name} added.")


@router.post("/categories/{category_id}")
async def update(
    request: Request,
    category_id: int,
    user: PageUser,
    session: SessionDep,
    name: Field = "",
    colour: Field = "",
) -> Response:
    category = await _owned(session, user, category_id)
    try:
        data = CategoryUpdate(name=name[:200] or None, colour=colour[:20] or None)
        await categories.update_category(
            session=session, user=user, category=category, name=data.name, colour=data.colour
        )
    except ValidationError as exc:
        return await _page(request, session, user, {category_id: validation_errors(exc)}, 422)
    except CategoryProblem as exc:
        await session.rollback()
        return await _page(request, session, user, {category_id: {exc.field: exc.message}}, 422)
    return await _done(request, session, user, "Category saved.")


@router.post("/categories/{category_id}/merge")
async def merge(
    request: Request, category_id: int, user: PageUser, session: SessionDep, into: Field = ""
) -> Response:
    category = await _owned(session, user, category_id)
    name = category.name
    try:
        target = await categories.merge_category(
            session=session,
            user=user,
            category=category,
            into_id=int(into) if into.isdigit() else -1,
        )
    except CategoryProblem as exc:
        return await _page(request, session, user, {category_id: {"merge_into": exc.message}}, 422)
    return await _done(request, session, user, f"{name} merged into {target.name}.")


@router.post("/categories/{category_id}/delete")
async def delete(
    request: Request, category_id: int, user: PageUser, session: SessionDep
) -> Response:
    category = await _owned(session, user, category_id)
    name = category.name
    await categories.delete_category(session=session, user=user, category=category)
    return await _done(
        request, session, user, f"{name} deleted; its entries are now uncategorised."
    )
