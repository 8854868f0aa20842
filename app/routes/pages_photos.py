"""Photos in the pages: the image and thumbnail files (owner only), and the plain forms that
add, describe, move and remove photos with JavaScript off (static/js/photos.js does the same
through the JSON API with progress when it is on).
"""

import re

from fastapi import APIRouter, HTTPException, Request
from starlette.responses import Response

from app.deps import PageUser, SessionDep
from app.htmx import redirect
from app.services import entries, photos
from app.templating import flash
from app.web import add_uploads, form_checked

router = APIRouter(include_in_schema=False)
NAME = re.compile(r"(?P<hash>[0-9a-f]{20})(?P<thumb>-thumb)?\.(?P<ext>jpg|png|webp)")
# A year: the URL changes with the bytes, so a cached copy is never stale.
CACHE = "private, max-age=31536000, immutable"


@router.get("/photos/{photo_id}/{name}")
async def serve(
    request: Request, photo_id: int, name: str, user: PageUser, session: SessionDep
) -> Response:
    """The stored bytes, to their owner only: another user gets 404 (as for entries), and
    no session at all the sign-in page."""
    match = NAME.fullmatch(name)
    if match is None or not 0 < photo_id <= 2_147_483_647:
        raise HTTPException(404)
    photo = await photos.get_photo(session=session, user=user, photo_id=photo_id)
    thumb = match["thumb"] is not None
    wanted_ext = "webp" if thumb else photo.extension if photo else ""
    if photo is None or not photo.sha256.startswith(match["hash"]) or match["ext"] != wanted_ext:
        raise HTTPException(404)
    await session.close()
    data = await photos.read(request.app.state.media, photo, thumb=thumb)
    if data is None:
        raise HTTPException(404)
    return Response(
        data,
        media_type="image/webp" if thumb else photo.content_type,
        headers={
            "Cache-Control": CACHE,
            "X-Content-Type-Options": "nosniff",
            "Content-Disposition": f'inline; filename="{name}"',
        },
    )


def _back(request: Request, entry_id: int) -> Response:
    return redirect(request, f"/entries/{entry_id}#photos")


@router.post("/entries/{entry_id}/photos")
async def add_from_form(
    request: Request, entry_id: int, user: PageUser, session: SessionDep
) -> Response:
    """The entry page's plain multipart form: one or more `file`s, optional `alt`. Its CSRF
    token is checked here (app.security.FORM_CHECKED), as for the import form."""
    form = await request.form()
    form_checked(request, form)
    if await entries.get_entry(session=session, user=user, entry_id=entry_id) is None:
        raise HTTPException(404)
    if not await add_uploads(request, session, user, entry_id, form):
        flash(request, "Choose a photo to add.", "error")
    return _back(request, entry_id)


async def _photo(session: SessionDep, user: PageUser, photo_id: int) -> photos.Photo:
    photo = await photos.get_photo(session=session, user=user, photo_id=photo_id)
    if photo is None:
        raise HTTPException(404)
    return photo


@router.post("/photos/{photo_id}/alt")
async def set_alt(request: Request, photo_id: int, user: PageUser, session: SessionDep) -> Response:
    photo = await _photo(session, user, photo_id)
    alt = str((await request.form()).get("alt") or "")[:500]
    await photos.update_photo(session=session, user=user, photo=photo, alt=alt)
    flash(request, "Alt text saved.")
    return _back(request, photo.entry_id)


@router.post("/photos/{photo_id}/move")
async def move(request: Request, photo_id: int, user: PageUser, session: SessionDep) -> Response:
    photo = await _photo(session, user, photo_id)
    value = str((await request.form()).get("position") or "")
    if value.isdigit() and len(value) < 3:
        await photos.update_photo(session=session, user=user, photo=photo, position=int(value))
    return _back(request, photo.entry_id)


@router.post("/photos/{photo_id}/delete")
async def remove(request: Request, photo_id: int, user: PageUser, session: SessionDep) -> Response:
    photo = await _photo(session, user, photo_id)
    entry_id = photo.entry_id
    await photos.delete_photo(
        session=session, user=user, photo=photo, storage=request.app.state.media
    )
    flash(request, "Photo removed.")
    return _back(request, entry_id)
