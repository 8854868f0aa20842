"""JSON API for entries: list (filters, search, cursor paging), create, read, change, delete.

GET, POST and PATCH send the entry's version as a strong ETag; PATCH and DELETE with an
If-Match that names no current version answer 412 and write nothing (without If-Match, or
with `*`, they work as always), so two clients editing one entry cannot lose a change.
"""

import re
from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Path, Query, Response, status

from app.deps import CurrentUser, SessionDep
from app.models import Entry, Photo
from app.schemas import (
    ID_MAX,
    CategoryRef,
    Day,
    EntryCreate,
    EntryPage,
    EntryRead,
    EntryUpdate,
    PhotoRead,
)
from app.services import entries
from app.services.entries import EntryChanged, EntryProblem, EntryView, Filters

router = APIRouter(prefix="/entries", tags=["entries"])
EntryId = Annotated[int, Path(ge=1, le=ID_MAX)]
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "ENTRY_NOT_FOUND: no such entry among yours"}
}
STALE: dict[int | str, dict[str, Any]] = {
    **NOT_FOUND,
    412: {"description": "ENTRY_CHANGED: If-Match names no current version; nothing written"},
}
IfMatch = Annotated[
    str | None,
    Header(
        max_length=1000,
        description="The ETag you read (GET /entries/{id}); refused with 412 if it changed since.",
    ),
]
STRONG_TAG = re.compile(r'"(\d{1,18})"')


def etag(entry: Entry) -> str:
    return f'"{entry.version}"'


def versions_matching(if_match: str | None) -> set[int] | None:
    """The versions an If-Match header accepts; None for any (no header, or `*`). Weak tags
    never match (RFC 9110 compares strongly), so a header of only those matches nothing."""
    if if_match is None or if_match.strip() == "*":
        return None
    return {
        int(m.group(1)) for tag in if_match.split(",") if (m := STRONG_TAG.fullmatch(tag.strip()))
    }


def stale(entry: Entry) -> HTTPException:
    return HTTPException(412, "ENTRY_CHANGED", headers={"ETag": etag(entry)})


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
        photos=[photo_read(p) for p in view.photos],
    )


def photo_read(photo: Photo) -> PhotoRead:
    assert photo.id is not None
    return PhotoRead(
        id=photo.id,
        url=photo.url,
        thumbnail_url=photo.thumbnail_url,
        width=photo.width,
        height=photo.height,
        content_type=photo.content_type,
        bytes=photo.bytes,
        alt=photo.alt,
        position=photo.position,
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


async def _owned(session: SessionDep, user: CurrentUser, entry_id: int) -> Entry:
    entry = await entries.get_entry(session=session, user=user, entry_id=entry_id)
    if entry is None:
        raise HTTPException(404, "ENTRY_NOT_FOUND")
    return entry


async def _answer(
    session: SessionDep, user: CurrentUser, entry_id: int, response: Response
) -> EntryRead:
    view = await _view(session, user, entry_id)
    response.headers["ETag"] = etag(view.entry)
    return entry_read(view)


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_entry(
    body: EntryCreate, user: CurrentUser, session: SessionDep, response: Response
) -> EntryRead:
    """Write down a win. `day` defaults to today (your time zone); body #hashtags become tags."""
    try:
        entry = await entries.create_entry(session=session, user=user, data=body)
    except EntryProblem as exc:
        raise problem(exc) from exc
    assert entry.id is not None
    return await _answer(session, user, entry.id, response)


@router.get("/{entry_id}", responses=NOT_FOUND)
async def read_entry(
    entry_id: EntryId, user: CurrentUser, session: SessionDep, response: Response
) -> EntryRead:
    """One entry; its ETag is the version to send back as If-Match when changing it."""
    return await _answer(session, user, entry_id, response)


@router.patch("/{entry_id}", responses=STALE)
async def update_entry(
    entry_id: EntryId,
    body: EntryUpdate,
    user: CurrentUser,
    session: SessionDep,
    response: Response,
    if_match: IfMatch = None,
) -> EntryRead:
    """Change the fields you send; the others stay as they are."""
    entry = await _owned(session, user, entry_id)
    try:
        await entries.update_entry(
            session=session, user=user, entry=entry, data=body, versions=versions_matching(if_match)
        )
    except EntryProblem as exc:
        raise problem(exc) from exc
    except EntryChanged:
        raise stale(await _owned(session, user, entry_id)) from None
    return await _answer(session, user, entry_id, response)


@router.delete("/{entry_id}", status_code=204, response_class=Response, responses=STALE)
async def delete_entry(
    entry_id: EntryId, user: CurrentUser, session: SessionDep, if_match: IfMatch = None
) -> Response:
    """Delete the entry (it can be restored from the entries page for a few minutes)."""
    entry = await _owned(session, user, entry_id)
    try:
        await entries.delete_entry(
            session=session, user=user, entry=entry, versions=versions_matching(if_match)
        )
    except EntryChanged:
        raise stale(await _owned(session, user, entry_id)) from None
    return Response(status_code=204)
