"""The diary pages: the list with quick-add, filters and search; detail; edit; delete with undo.

HTMX gets fragments (the results, one entry, a form with its errors); a plain form gets a
303 redirect or the page with errors, so every action works with JavaScript off.
"""

import re
from datetime import date
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from pydantic import ValidationError
from starlette.datastructures import FormData
from starlette.responses import JSONResponse, Response

from app.deps import PageUser, SessionDep
from app.forms import optional, validation_errors
from app.htmx import is_htmx, redirect
from app.models import User
from app.schemas import EntryCreate, EntryUpdate, parse_day
from app.services import Problem, entries
from app.services.entries import Filters
from app.templating import flash, render
from app.web import add_uploads, form_checked, owned_or_404

router = APIRouter(include_in_schema=False)
FIELDS = ("day", "title", "body", "category_id", "mood", "tags", "amount", "currency")


def _int(value: str | None) -> int | None:
    return int(value) if value and value.strip().lstrip("-").isdigit() else None


def filters_from(request: Request) -> tuple[Filters, dict[str, str]]:
    """Filters from the query string; unusable values are ignored (and shown back empty)."""
    params = request.query_params
    raw = {
        k: params.get(k, "")[:200]
        for k in ("q", "category_id", "tag", "mood", "date_from", "date_to")
    }
    mood = _int(raw["mood"])

    def day(value: str) -> date | None:
        try:
            return parse_day(value) if value else None
        except ValueError:
            return None

    filters = Filters(
        q=raw["q"].strip(),
        category_id=_int(raw["category_id"]),
        tag=raw["tag"].strip().lstrip("#").lower() or None,
        mood=mood if mood in range(1, 6) else None,
        date_from=day(raw["date_from"]),
        date_to=day(raw["date_to"]),
    )
    return filters, raw


def entry_data(form: FormData, *, partial: bool) -> dict[str, Any]:
    """A form's fields as the API schema expects them; blank optional fields mean 'none'."""
    values = {name: str(form.get(name) or "") for name in FIELDS if name in form or not partial}
    data: dict[str, Any] = {name: optional(value) for name, value in values.items()}
    if "title" in values:
        data["title"] = values["title"]
    if "body" in values:
        data["body"] = values["body"]
    if "tags" in values:
        data["tags"] = [t for t in re.split(r"[\s,]+", values["tags"]) if t]
    return data


async def _page_context(session: SessionDep, user: User, request: Request) -> dict[str, Any]:
    filters, raw = filters_from(request)
    cursor = request.query_params.get("cursor") or None
    try:
        page = await entries.list_entries(
            session=session, user=user, filters=filters, cursor=cursor
        )
    except Problem:
        page = await entries.list_entries(session=session, user=user, filters=filters)
    return {
        "user": user,
        "page": page,
        "filters": filters,
        "raw": raw,
        "after_day": request.query_params.get("after", ""),
        "categories": await entries.category_choices(session=session, user=user),
        "today": entries.today_for(user),
    }


def _form_context(
    ctx: dict[str, Any], values: dict[str, Any] | None = None, errors: dict[str, str] | None = None
) -> dict[str, Any]:
    today = ctx["today"]
    return {**ctx, "values": values or {"day": today.isoformat()}, "errors": errors or {}}


@router.get("/entries")
async def list_page(request: Request, user: PageUser, session: SessionDep) -> Response:
    ctx = _form_context(await _page_context(session, user, request))
    await session.close()  # the connection goes back to the pool before rendering
    target = request.headers.get("hx-target", "")
    more = target.startswith("load-more")  # focus moves to the first entry loaded
    page = "entries/_page.html" if more else "entries/_results.html"
    return render(request, "entries/list.html", {**ctx, "focus_first": more}, partial=page)


@router.get("/entries/new")
async def new_page(request: Request, user: PageUser, session: SessionDep) -> Response:
    ctx = {"user": user, "today": entries.today_for(user)}
    ctx["categories"] = await entries.category_choices(session=session, user=user)
    return render(request, "entries/new.html", _form_context(ctx))


@router.post("/entries")
async def create(request: Request, user: PageUser, session: SessionDep) -> Response:
    form = await request.form()
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        form_checked(request, form)  # the new-win page with photos (app.security.FORM_CHECKED)
    data = entry_data(form, partial=False)
    try:
        entry = await entries.create_entry(
            session=session, user=user, data=EntryCreate.model_validate(data)
        )
    except ValidationError as exc:
        return await _quick_add_errors(request, session, user, form, validation_errors(exc))
    except Problem as exc:
        return await _quick_add_errors(request, session, user, form, {exc.field: exc.message})
    if not is_htmx(request):
        flash(request, f"Saved: {entry.title}")
        entry_id = entry.id
        assert entry_id is not None
        if await add_uploads(request, session, user, entry_id, form):
            return redirect(request, f"/entries/{entry_id}#photos")
        return redirect(request, "/entries")
    ctx = _form_context(await _page_context(session, user, request))
    ctx |= {"fresh_form": True, "created_id": entry.id}  # focus moves to the new entry
    return render(request, "entries/list.html", ctx, partial="entries/_results.html")


async def _quick_add_errors(
    request: Request, session: SessionDep, user: User, form: FormData, errors: dict[str, str]
) -> Response:
    values = {name: str(form.get(name) or "") for name in FIELDS}
    ctx = _form_context(await _page_context(session, user, request), values, errors)
    page = (
        "entries/new.html"
        if request.headers.get("referer", "").endswith("/entries/new")
        else "entries/list.html"
    )
    response = render(request, page, ctx, partial="entries/_form.html", status_code=422)
    if is_htmx(request):
        response.headers["HX-Retarget"] = "#quick-add"
        response.headers["HX-Reswap"] = "outerHTML"
    return response


async def _entry_context(session: SessionDep, user: User, entry_id: int) -> dict[str, Any]:
    view = owned_or_404(await entries.get_entry_view(session=session, user=user, entry_id=entry_id))
    return {"user": user, "view": view, "today": entries.today_for(user)}


def _swapped_entry(request: Request, ctx: dict[str, Any]) -> Response:
    """One entry swapped back in after an edit, a cancel or an undo: focus moves to it, and on
    the entry's own page its title stays the page's h1."""
    own_page = f"/entries/{ctx['view'].entry.id}"
    detail = urlsplit(request.headers.get("hx-current-url", "")).path == own_page
    ctx |= {"focus": True, "detail": detail}
    return render(request, "entries/detail.html", ctx, partial="entries/_entry.html")


@router.get("/entries/{entry_id}")
async def detail(request: Request, entry_id: int, user: PageUser, session: SessionDep) -> Response:
    return _swapped_entry(request, await _entry_context(session, user, entry_id))


@router.get("/entries/{entry_id}/delete")
async def confirm_delete(
    request: Request, entry_id: int, user: PageUser, session: SessionDep
) -> Response:
    """Deleting asks once, inline with HTMX or as a page without JavaScript."""
    ctx = await _entry_context(session, user, entry_id)
    ctx["entry"] = ctx["view"].entry
    return render(request, "entries/delete.html", ctx, partial="entries/_confirm_delete.html")


@router.get("/entries/{entry_id}/edit")
async def edit_page(
    request: Request, entry_id: int, user: PageUser, session: SessionDep
) -> Response:
    ctx = await _entry_context(session, user, entry_id)
    entry = ctx["view"].entry
    values = {
        name: getattr(entry, name)
        for name in ("day", "title", "body", "category_id", "mood", "currency")
    }
    values |= {
        "tags": " ".join(entry.tag_list),
        "amount": ctx["view"].amount,
        "version": entry.version,
    }
    ctx["categories"] = await entries.category_choices(session=session, user=user)
    return render(
        request,
        "entries/edit.html",
        {**ctx, "values": values, "errors": {}},
        partial="entries/_edit_form.html",
    )


@router.post("/entries/{entry_id}")
async def update(request: Request, entry_id: int, user: PageUser, session: SessionDep) -> Response:
    entry = owned_or_404(await entries.get_entry(session=session, user=user, entry_id=entry_id))
    form = await request.form()
    try:
        data = EntryUpdate.model_validate(entry_data(form, partial=True))
        await entries.update_entry(
            session=session, user=user, entry=entry, data=data, versions=form_versions(form)
        )
    except (ValidationError, Problem) as exc:  # nothing was changed
        errors = (
            validation_errors(exc) if isinstance(exc, ValidationError) else {exc.field: exc.message}
        )
        return await _edit_again(request, session, user, entry_id, form, errors=errors)
    except entries.EntryChanged:  # saved meanwhile elsewhere: show both, lose neither
        return await _edit_again(request, session, user, entry_id, form, conflict=True)
    if not is_htmx(request):
        flash(request, "Changes saved.")
        return redirect(request, f"/entries/{entry_id}")
    return _swapped_entry(request, await _entry_context(session, user, entry_id))


def form_versions(form: FormData) -> set[int] | None:
    """The version the edit form was made from (its hidden field); None for a form without
    one (works as before). A value that is no number matches no version."""
    if "version" not in form:
        return None
    value = str(form.get("version") or "").strip()
    return {int(value)} if value.isdigit() and len(value) <= 18 else set()


async def _edit_again(
    request: Request,
    session: SessionDep,
    user: User,
    entry_id: int,
    form: FormData,
    *,
    errors: dict[str, str] | None = None,
    conflict: bool = False,
) -> Response:
    """The edit form with the values sent: with their errors (422), or after a stale save
    with both versions side by side and the saved version's number, so sending it again
    keeps yours (409 to a plain form; 200 to HTMX, which swaps only what succeeded or 422)."""
    ctx = await _entry_context(session, user, entry_id)
    ctx["categories"] = await entries.category_choices(session=session, user=user)
    values: dict[str, Any] = {name: str(form.get(name) or "") for name in FIELDS}
    values["version"] = ctx["view"].entry.version if conflict else str(form.get("version") or "")
    status = 422 if not conflict else 200 if is_htmx(request) else 409
    return render(
        request,
        "entries/edit.html",
        {
            **ctx,
            "values": values,
            "errors": errors or {},
            "conflict": ctx["view"] if conflict else None,
        },
        partial="entries/_edit_form.html",
        status_code=status,
    )


@router.post("/entries/{entry_id}/delete")
async def delete(request: Request, entry_id: int, user: PageUser, session: SessionDep) -> Response:
    entry = owned_or_404(await entries.get_entry(session=session, user=user, entry_id=entry_id))
    await entries.delete_entry(session=session, user=user, entry=entry)
    if is_htmx(request):
        return render(
            request, "entries/_deleted.html", {"entry": entry}, partial="entries/_deleted.html"
        )
    flash(request, f"Deleted: {entry.title}", "undo", entry_id=entry_id)
    return redirect(request, "/entries")


def _too_late(request: Request) -> Response:
    """410: the undo window has passed (the entry is, or is about to be, gone for good)."""
    minutes = int(entries.UNDO_WINDOW.total_seconds() // 60)
    message = f"This entry can no longer be restored: a delete can be undone for {minutes} minutes."
    if is_htmx(request):  # not swapped: app.js shows `message` as a toast
        return JSONResponse({"detail": "RESTORE_EXPIRED", "message": message}, 410)
    flash(request, message, "error")
    return redirect(request, "/entries")


@router.post("/entries/{entry_id}/restore")
async def restore(request: Request, entry_id: int, user: PageUser, session: SessionDep) -> Response:
    entry = owned_or_404(
        await entries.get_entry(session=session, user=user, entry_id=entry_id, deleted=True)
    )
    try:
        await entries.restore_entry(session=session, entry=entry)
    except entries.RestoreExpired:
        return _too_late(request)
    if not is_htmx(request):
        flash(request, f"Restored: {entry.title}")
        return redirect(request, f"/entries#entry-{entry_id}")
    return _swapped_entry(request, await _entry_context(session, user, entry_id))
