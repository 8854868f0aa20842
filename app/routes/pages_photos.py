"""Photos in the pages: the image and thumbnail files (owner only), and the plain forms that
add, describe, move and remove photos with JavaScript off (static/js/photos.js does the same
through the JSON API with progress when it is on).
"""

import re

from fastapi import APIRouter, HTTPException, Request
from starlette.datastructures import UploadFile
from starlette.responses import Response

from app.deps import OptionalUser, SessionDep
from app.htmx import redirect
from app.routes.api_photos import read_bounded
from app.security import form_token_valid
from app.services import entries, photos
from app.services.photos import MAX_PER_ENTRY, PhotoProblem
from app.templating import flash
from app.web import PageUser

router = APIRouter(include_in_schema=False)
NAME = re.compile(r"(?P<hash>[0-9a-f]{20})(?P<thumb>-thumb)?\.(?P<ext>jpg|png|webp)")
# A year: the URL changes with the bytes, so a cached copy is never stale.
CACHE = "private, max-age=31536000, immutable"


@router.get("/photos/{photo_id}/{name}")
async def serve(
    request: Request, photo_id: int, name: str, user: OptionalUser, session: SessionDep
) -> Response:
    """The stored bytes, to their owner only (anyone else, signed in or not: 404)."""
    match = NAME.fullmatch(name)
    if user is None or match is None or not 0 < photo_id <= 2_147_483_647:
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
    cookie = request.cookies.get(request.app.state.settings.cookie_name("csrftoken"))
    if not form_token_valid(cookie, form.get("csrftoken"), request.app.state.settings.secret_key):
        raise HTTPException(403, "CSRF_FAILED")
    entry = await entries.get_entry(session=session, user=user, entry_id=entry_id)
    if entry is None:
        raise HTTPException(404)
    files = [f for f in form.getlist("file") if isinstance(f, UploadFile) and f.filename]
    alt = str(form.get("alt") or "") or None
    state = request.app.state
    added, problems = 0, []
    for upload in files[: MAX_PER_ENTRY + 1]:
        entry = await entries.get_entry(session=session, user=user, entry_id=entry_id)
        if entry is None:
            break
        try:
            data = await read_bounded(upload, state.settings.media_max_bytes)
            await photos.add_photo(
                session=session,
                user=user,
                entry=entry,
                data=data,
                filename=upload.filename or "",
                alt=alt,
                storage=state.media,
                settings=state.settings,
            )
            added += 1
        except PhotoProblem as exc:
            problems.append(f"{(upload.filename or 'photo')[:80]}: {exc.message}")
            if user in session:
                await session.refresh(user)
    if added:
        flash(request, f"Added {added} photo{'s' if added != 1 else ''}.")
    for problem in problems:
        flash(request, problem, "error")
    if not files:
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
