"""JSON API for photos on wins: add (multipart), list, change alt text and order, remove.

The image and thumbnail URLs in the answers are served by app.routes.pages_photos, to the
owner only; they name the content hash, so they never change while the bytes do not.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Path, Request, Response, UploadFile, status
from fastapi.responses import JSONResponse

from app.deps import CurrentUser, SessionDep
from app.schemas import ID_MAX, PhotoRead, PhotoUpdate
from app.services import entries, photos
from app.services.photos import PhotoProblem, photo_read
from app.web import read_bounded

router = APIRouter(tags=["photos"])
Id = Annotated[int, Path(ge=1, le=ID_MAX)]
REFUSED: dict[int | str, dict[str, Any]] = {
    404: {"description": "ENTRY_NOT_FOUND: no such entry among yours"},
    409: {"description": "TOO_MANY_PHOTOS: the win already holds 10 photos"},
    413: {
        "description": "PHOTO_TOO_LARGE (over MEDIA_MAX_BYTES), TOO_MANY_PIXELS (a "
        "decompression bomb) or MEDIA_QUOTA_EXCEEDED; nothing stored"
    },
    415: {
        "description": "UNSUPPORTED_MEDIA: not a JPEG, PNG, WebP (or HEIC) image, or a "
        "damaged one (an SVG, HTML named .jpg, a truncated file); nothing stored"
    },
}
PHOTO_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "PHOTO_NOT_FOUND: no such photo among yours"}
}


def refused(exc: PhotoProblem) -> JSONResponse:
    return JSONResponse({"detail": exc.code, "message": exc.message}, exc.status)


@router.post(
    "/entries/{entry_id}/photos",
    status_code=status.HTTP_201_CREATED,
    responses=REFUSED,
    response_model=PhotoRead,
)
async def add_photo(
    request: Request,
    entry_id: Id,
    file: UploadFile,
    user: CurrentUser,
    session: SessionDep,
    alt: Annotated[str | None, Form(max_length=500)] = None,
) -> Any:
    """Add a photo to a win (multipart: `file`, optional `alt`, which defaults to the win's
    title). It is decoded and re-encoded (EXIF and GPS removed, orientation applied), up to
    10 per win; example: `curl -F file=@medal.jpg -F alt="The medal" -H "Authorization:
    Bearer $TOKEN" https://diary.example/api/v1/entries/42/photos`."""
    entry = await entries.get_entry(session=session, user=user, entry_id=entry_id)
    if entry is None:
        raise HTTPException(404, "ENTRY_NOT_FOUND")
    state = request.app.state
    try:
        data = await read_bounded(file, state.settings.media_max_bytes)
        photo = await photos.add_photo(
            session=session,
            user=user,
            entry=entry,
            data=data,
            filename=file.filename or "",
            alt=alt,
            storage=state.media,
            settings=state.settings,
        )
    except PhotoProblem as exc:
        return refused(exc)
    return photo_read(photo)


@router.get("/entries/{entry_id}/photos", responses={404: REFUSED[404]})
async def list_photos(entry_id: Id, user: CurrentUser, session: SessionDep) -> list[PhotoRead]:
    """A win's photos, in their order."""
    if await entries.get_entry(session=session, user=user, entry_id=entry_id) is None:
        raise HTTPException(404, "ENTRY_NOT_FOUND")
    found = await photos.list_photos(session=session, user=user, entry_id=entry_id)
    return [photo_read(p) for p in found]


@router.patch("/photos/{photo_id}", responses=PHOTO_NOT_FOUND)
async def update_photo(
    photo_id: Id, body: PhotoUpdate, user: CurrentUser, session: SessionDep
) -> PhotoRead:
    """Change the alt text and/or move the photo (`position`, 0 first; the others shift)."""
    photo = await photos.get_photo(session=session, user=user, photo_id=photo_id)
    if photo is None:
        raise HTTPException(404, "PHOTO_NOT_FOUND")
    photo = await photos.update_photo(
        session=session, user=user, photo=photo, alt=body.alt, position=body.position
    )
    return photo_read(photo)


@router.delete(
    "/photos/{photo_id}", status_code=204, response_class=Response, responses=PHOTO_NOT_FOUND
)
async def delete_photo(
    request: Request, photo_id: Id, user: CurrentUser, session: SessionDep
) -> Response:
    """Remove the photo and its files (no undo)."""
    photo = await photos.get_photo(session=session, user=user, photo_id=photo_id)
    if photo is None:
        raise HTTPException(404, "PHOTO_NOT_FOUND")
    await photos.delete_photo(
        session=session, user=user, photo=photo, storage=request.app.state.media
    )
    return Response(status_code=204)
