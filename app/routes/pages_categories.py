"""The categories page: create, rename and recolour, merge, delete (entries are never lost)."""

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from pydantic import ValidationError
from starlette.responses import Response

from app.deps import PageUser, SessionDep
from app.forms import validation_errors
from app.htmx import is_htmx, redirect
from app.models import Category, User
from app.schemas import CategoryCreate, CategoryUpdate
from app.services import Problem, categories
from app.templating import flash, render
from app.web import owned_or_404

router = APIRouter(include_in_schema=False)
Field = Annotated[str, Form()]


async def _page(
    request: Request,
    session: SessionDep,
    user: User,
    errors: dict[Any, Any] | None = None,
    status_code: int = 200,
    **extra: Any,
) -> Response:
    """The list; `values` holds what was typed into a form that came back with an error,
    `notice` a sentence for HTMX, `focus_id` the row app.js moves focus to."""
    rows = await categories.list_categories(session=session, user=user)
    ctx = {"user": user, "rows": rows, "errors": errors or {}, "values": {}, "focus_id": None}
    ctx |= extra
    return render(
        request,
        "categories/page.html",
        ctx,
        partial="categories/_list.html",
        status_code=status_code,
    )


def _errors(exc: ValidationError | Problem) -> dict[str, str]:
    if isinstance(exc, ValidationError):
        return validation_errors(exc)
    return {exc.field: exc.message}


async def _owned(session: SessionDep, user: User, category_id: int) -> Category:
    category = owned_or_404(
        await categories.get_category(session=session, user=user, category_id=category_id)
    )
    return category


async def _done(request: Request, session: SessionDep, user: User, message: str) -> Response:
    """HTMX gets the updated list; a plain form is redirected with the message."""
    if is_htmx(request):
        return await _page(request, session, user, notice=message)
    flash(request, message)
    return redirect(request, "/categories")


@router.get("/categories")
async def categories_page(request: Request, user: PageUser, session: SessionDep) -> Response:
    focus = request.query_params.get("focus", "")
    return await _page(request, session, user, focus_id=int(focus) if focus.isdigit() else None)


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
    except (ValidationError, Problem) as exc:
        typed = {"new": {"name": name[:200], "colour": colour[:20]}}
        return await _page(request, session, user, {"new": _errors(exc)}, 422, values=typed)
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
    except (ValidationError, Problem) as exc:  # nothing was changed: no rollback,
        # which would expire the user the page still reads
        typed = {category_id: {"name": name[:200], "colour": colour[:20]}}
        errors = {category_id: _errors(exc)}
        return await _page(request, session, user, errors, 422, values=typed, focus_id=category_id)
    return await _done(request, session, user, "Category saved.")


@router.post("/categories/{category_id}/merge")
async def merge(
    request: Request,
    category_id: int,
    user: PageUser,
    session: SessionDep,
    into: Field = "",
    confirmed: Field = "",
) -> Response:
    """Merging asks once (the form comes back with confirmed=yes), then moves the entries."""
    category = await _owned(session, user, category_id)
    name = category.name
    into_id = int(into) if into.isdigit() and len(into) < 12 else -1
    target = await categories.get_category(session=session, user=user, category_id=into_id)
    if target is not None and target.id != category.id and confirmed != "yes":
        count = await _entry_count(session, user, category_id)
        ask = {
            "question": f"Merge “{name}” into “{target.name}”?",
            "detail": f"{_entries(count)} {'moves' if count == 1 else 'move'} to {target.name}"
            f", and {name} is deleted.",
            "action": f"/categories/{category_id}/merge",
            "fields": {"into": str(target.id), "confirmed": "yes"},
            "button": "Merge",
        }
        return _confirm(request, user, category, ask)
    try:
        target = await categories.merge_category(
            session=session, user=user, category=category, into_id=into_id
        )
    except Problem as exc:
        errors = {category_id: {"merge_into": exc.message}}
        return await _page(request, session, user, errors, 422, focus_id=category_id)
    return await _done(request, session, user, f"{name} merged into {target.name}.")


@router.get("/categories/{category_id}/delete")
async def confirm_delete(
    request: Request, category_id: int, user: PageUser, session: SessionDep
) -> Response:
    """Deleting asks once, in the row with HTMX or as a page without JavaScript."""
    category = await _owned(session, user, category_id)
    count = await _entry_count(session, user, category_id)
    ask = {
        "question": f"Delete the category “{category.name}”?",
        "detail": f"{_entries(count)} {'stays' if count == 1 else 'stay'}, uncategorised.",
        "action": f"/categories/{category_id}/delete",
        "fields": {},
        "button": "Delete",
    }
    return _confirm(request, user, category, ask)


def _entries(count: int) -> str:
    return f"Its {count} {'entry' if count == 1 else 'entries'}"


async def _entry_count(session: SessionDep, user: User, category_id: int) -> int:
    rows = await categories.list_categories(session=session, user=user)
    return next((r.entry_count for r in rows if r.category.id == category_id), 0)


def _confirm(request: Request, user: User, category: Category, ask: dict[str, Any]) -> Response:
    ctx = {"user": user, "category": category, "ask": ask}
    response = render(request, "categories/confirm.html", ctx, partial="categories/_confirm.html")
    if is_htmx(request):  # the question replaces the row, whichever form asked
        response.headers["HX-Retarget"] = f"#category-{category.id}"
        response.headers["HX-Reswap"] = "outerHTML"
    return response


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
