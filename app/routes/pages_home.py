"""Home page (a welcome for visitors, what comes next for members) and the health check."""

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from app.deps import OptionalUser, SessionDep
from app.services import money
from app.static import static_url
from app.templating import render

router = APIRouter()


@router.get("/", include_in_schema=False)
async def home(request: Request, user: OptionalUser) -> Response:
    return render(request, "home.html" if user else "welcome.html", {"user": user})


def web_manifest() -> dict[str, object]:
    """What a phone needs to install the diary as an app (icons under their hashed names)."""
    icons = [
        {"src": static_url(f"icons/{name}-{size}.png"), "sizes": f"{size}x{size}",
         "type": "image/png", "purpose": purpose}
        for name, purpose in (("icon", "any"), ("maskable", "maskable"))
        for size in (192, 512)
    ]  # fmt: skip
    return {
        "id": "/",
        "name": "SuccessDiary",
        "short_name": "SuccessDiary",
        "description": "A private diary of your wins.",
        "start_url": "/entries",
        "scope": "/",
        "display": "standalone",
        "theme_color": "#059669",
        "background_color": "#f8fafc",
        "icons": icons,
        "shortcuts": [{"name": "New win", "url": "/entries/new"}],
    }


@router.get("/manifest.webmanifest", include_in_schema=False)
async def manifest() -> JSONResponse:
    return JSONResponse(
        web_manifest(),
        media_type="application/manifest+json",
        headers={"Cache-Control": "public, max-age=86400"},
    )


@router.get("/healthz", tags=["operations"])
async def healthz(request: Request, session: SessionDep) -> JSONResponse:
    """200 when the database answers, 503 when it does not. `rates` says whether the
    exchange rates are recent (ok), old or failing to refresh (stale), or absent (none);
    `queue` how many jobs wait and for how long the oldest has (a growing age: no worker
    runs). Both informative: they never turn the status to error."""
    try:
        await session.execute(text("SELECT 1"))
    except (SQLAlchemyError, OSError):
        return JSONResponse(
            {"status": "error", "database": "unavailable"},
            status_code=503,
            headers={"Retry-After": "30"},
        )
    rates = await money.health(session)
    try:
        queue = await run_in_threadpool(request.app.state.jobs.queue_state)
    except Exception as exc:  # the store (Redis, the jobs file) is down: say so, stay up
        queue = {"status": "unavailable", "error": type(exc).__name__}
    return JSONResponse({"status": "ok", "database": "ok", "rates": rates, "queue": queue})
