"""Download everything: GET /api/v1/export?format=json|markdown|csv (streamed).

At most `export.EXPORTS_AT_ONCE` exports and print views per user at once (per worker):
429 TOO_MANY_EXPORTS past that.
"""

from datetime import date
from typing import Literal

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import StreamingResponse

from app.deps import CurrentUser
from app.services import export as exports
from app.services.export import EXPORTERS, EXTENSIONS, MEDIA_TYPES
from app.web import ExportResponse, audit_after

router = APIRouter(tags=["export"])


@router.get(
    "/export",
    response_class=StreamingResponse,
    responses={
        200: {"content": {t: {} for t in MEDIA_TYPES.values()}, "description": "The export file"},
        429: {"description": "TOO_MANY_EXPORTS: wait for one of this account's to finish"},
    },
)
async def export(
    request: Request,
    user: CurrentUser,
    format: Literal["json", "markdown", "csv", "archive"] = "json",
) -> StreamingResponse:
    """Every entry, category, tag and preference. JSON is lossless and can be imported back;
    Markdown is a zip with one file per entry (YAML front matter), a folder per year, and
    the photos in media/ (linked relatively); CSV lists each entry's photo file names;
    `archive` is a zip of the JSON export (successdiary.json) and media/, which imports back
    with every photo byte for byte."""
    if not exports.slots.take(user.id):
        raise HTTPException(429, "TOO_MANY_EXPORTS", headers={"Retry-After": "10"})
    stream = EXPORTERS[format](request.app.state.sessionmaker, user, request.app.state.media)
    audit_after(request, "export", user, format.upper())
    filename = f"successdiary-{date.today().isoformat()}.{EXTENSIONS[format]}"
    return ExportResponse(
        stream,
        user.id,
        media_type=MEDIA_TYPES[format],
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
