"""JSON API for entries: list (filters, search, cursor paging), create, read, change, delete."""

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Response, status

from app.deps import CurrentUser, SessionDep
from app.schemas import ID_MAX, CategoryRef, Day, EntryCreate, EntryPage, EntryRead, EntryUpdate
from app.services import entries
from app.services.entries import EntryProblem, EntryView, Filters

router = APIRouter(prefix="/entries", tags=["entries"])
EntryId = Annotated[int, Path(ge=1, le=ID_MAX)]
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "ENTRY_NOT_FOUND: no such entry among yours"}
}


def entry_read(view: EntryView) -> EntryRead:
    entry, category = view.entry, view.category
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
        amount=view.amount,
        currency=entry.currency,
        created_at=entry.created_at,
        updated_at=entry.updated_at,
    )


def problem(exc: EntryProblem) -> HTTPException:
    return HTTPException(
        422, [{"loc": ["body", exc.field], "msg": exc.message, "type": "value_error"}]
    )


async def _view(session: SessionDep, user: CurrentUser, entry_id: int) -> EntryView:
    view = await entries.get_entry_view(session=session, user=user, entry_id=entry_id)
    if view is None:
        raise HTTPException(404, "ENTRY_NOT_FOUND")
    return view


@router.get("")
async def list_entries(
    user: CurrentUser,
    session: SessionDep,
    q: Annotated[str, Query(max_length=500, description="Full-text search, ranked")] = "",
    category_id: Annotated[int | None, Query(ge=1, le=ID_MAX)] = None,
    tag: Annotated[str | None, Query(max_length=51)] = None,
    mood: Annotated[int | None, Query(ge=1, le=5)] = None,
    date_from: Day | None = None,
    date_to: Day | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = entries.PAGE_SIZE,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> EntryPage:
    """Your entries, newest day first; with `q`, the best matches first."""
    filters = Filters(q, category_id, tag, mood, date_from, date_to)
    try:
        page = await entries.list_entries(
            session=session, user=user, filters=filters, cursor=cursor, limit=limit
        )
    except EntryProblem as exc:
        raise HTTPException(
            422, [{"loc": ["query", exc.field], "msg": exc.message, "type": "value_error"}]
        ) from exc
    return EntryPage(items=[entry_read(v) for v in page.items], next_cursor=page.next_cursor)


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_entry(body: EntryCreate, user: CurrentUser, session: SessionDep) -> EntryRead:
    """Write down a win. `day` defaults to today (your time zone); body #hashtags become tags."""
    try:
        entry = await entries.create_entry(session=session, user=user, data=body)
    except EntryProblem as exc:
        raise problem(exc) from exc
    assert entry.id is not None
    return entry_read(await _view(session, user, entry.id))


@router.get("/{entry_id}", responses=NOT_FOUND)
async def read_entry(entry_id: EntryId, user: CurrentUser, session: SessionDep) -> EntryRead:
    return entry_read(await _view(session, user, entry_id))


@router.patch("/{entry_id}", responses=NOT_FOUND)
async def update_entry(
    entry_id: EntryId, body: EntryUpdate, user: CurrentUser, session: SessionDep
) -> EntryRead:
    """Change the fields you send; the others stay as they are."""
    entry = await entries.get_entry(session=session, user=user, entry_id=entry_id)
    if entry is None:
        raise HTTPException(404, "ENTRY_NOT_FOUND")
    try:
        await entries.update_entry(session=session, user=user, entry=entry, data=body)
    except EntryProblem as exc:
        raise problem(exc) from exc
    return entry_read(await _view(session, user, entry_id))


@router.delete("/{entry_id}", status_code=204, response_class=Response, responses=NOT_FOUND)
async def delete_entry(entry_id: EntryId, user: CurrentUser, session: SessionDep) -> Response:
    entry = await entries.get_entry(session=session, user=user, entry_id=entry_id)
    if entry is None:
        raise HTTPException(404, "ENTRY_NOT_FOUND")
    await entries.delete_entry(session=session, user=user, entry=entry)
    return Response(status_code=204)
