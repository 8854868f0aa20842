"""create_app(): settings, database, middleware, routers, static files and error pages."""

import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import quote

from asgi_correlation_id import CorrelationIdMiddleware, correlation_id
from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware
from starlette.responses import Response

from app.auth import RecentUses
from app.background import Background
from app.config import Settings
from app.config import settings as default_settings
from app.db import (
    CloseSessions,
    dispose,
    make_engine,
    make_gate,
    make_read_engine,
    make_sessionmaker,
)
from app.deps import LoginRequired, error_page_user
from app.htmx import redirect
from app.jobs import Context, Jobs
from app.observability import NoteRoute, Observe, configure_logging, route_templates, watch_pool
from app.observability import router as metrics_router
from app.ratelimit import AuthLimiter
from app.routes import (
    api_auth,
    api_categories,
    api_entries,
    api_export,
    api_import,
    api_photos,
    api_rates,
    api_stats,
    api_twofactor,
    api_users,
    dev_mail,
    pages_auth,
    pages_categories,
    pages_entries,
    pages_export,
    pages_home,
    pages_insights,
    pages_photos,
    pages_settings,
    pages_twofactor,
    unsubscribe,
)
from app.routes.docs import router as docs_router
from app.schemas import document_common_answers
from app.security import CSRF, BodyLimit, NoNulInQuery, SameOrigin, SecurityHeaders
from app.static import STATIC, Compress, HashedStaticFiles
from app.storage import storage_for
from app.templating import render

log = logging.getLogger("app")

# Raised where a session first touches a database that is down, hangs (connect timeout) or
# is saturated (no pooled connection within pool_timeout): the user gets a 503, not a 500.
DATABASE_UNAVAILABLE = (OperationalError, InterfaceError, PoolTimeout)
RETRY_AFTER_SECONDS = "30"
UPLOAD_PATHS = ("/api/v1/import", "/import/preview")
# (prefix, router): FastAPI tries routes in this order (a few microseconds each, measured in
# bench/), so the most requested pages come first; the JSON API keeps its order for /docs.
ROUTERS: list[tuple[str, APIRouter]] = [
    ("", pages_entries.router),
    ("", pages_insights.router),
    ("", pages_home.router),
    ("", pages_auth.router),
    ("", pages_settings.router),
    ("", pages_twofactor.router),
    ("", pages_categories.router),
    ("", pages_export.router),
    ("", pages_photos.router),
    ("", unsubscribe.router),
    ("/api/v1", api_auth.router),
    ("/api/v1", api_users.router),
    ("/api/v1", api_twofactor.router),
    ("/api/v1", api_entries.router),
    ("/api/v1", api_photos.router),
    ("/api/v1", api_categories.router),
    ("/api/v1", api_stats.router),
    ("/api/v1", api_rates.router),
    ("/api/v1", api_export.router),
    ("/api/v1", api_import.router),
]


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or default_settings
    configure_logging(settings.json_logs)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Purging deleted entries, pruning and the exchange rates are periodic jobs of the
        # worker (app/jobs.py), as is all mail: the web process only queues.
        yield
        await app.state.background.drain()
        await dispose(app.state.engine)
        await dispose(app.state.read_engine)

    app = FastAPI(
        title="SuccessDiary API",
        version="1.0.0",
        description="The JSON API of SuccessDiary, a private diary of wins.",
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json" if settings.docs_enabled else None,
        lifespan=lifespan,
        # Our metrics are Prometheus' (app.observability); FastAPI's OpenTelemetry hooks would
        # only ask on every request whether a tracer is configured.
        telemetry={"tracing": False, "metrics": False},
    )
    app.state.settings = settings
    app.state.engine = make_engine(settings.database_url)
    app.state.sessionmaker = make_sessionmaker(app.state.engine)
    app.state.read_engine = make_read_engine(settings.database_url)
    app.state.read_sessionmaker = make_sessionmaker(app.state.read_engine)
    app.state.recent_uses = RecentUses()
    app.state.read_gate = make_gate(app.state.read_engine)
    app.state.write_gate = make_gate(app.state.engine)
    watch_pool(app.state.engine)
    app.state.limiter = AuthLimiter(settings.redis_url)
    app.state.background = Background()
    app.state.media = storage_for(settings)
    app.state.jobs = Jobs(settings, Context(settings, app.state.sessionmaker, app.state.limiter))

    for prefix, router in ROUTERS:
        app.include_router(router, prefix=prefix)
    app.include_router(metrics_router)  # public like /healthz (METRICS_TOKEN guards it)
    if settings.docs_enabled:
        app.include_router(docs_router)
    if settings.dev:  # the outbox of kept mail; production has no such route at all
        app.include_router(dev_mail.router)
    plain_openapi = app.openapi
    app.openapi = lambda: document_common_answers(plain_openapi())  # type: ignore[method-assign]
    app.mount("/static", HashedStaticFiles(directory=STATIC), name="static")
    _add_error_handlers(app)

    # Outermost last: request id, compression, metrics and access line, headers, size limit,
    # NUL in the query, origin, CSRF, flash session, NoteRoute (tells the metrics which route
    # matched), then CloseSessions (closes the request's database sessions).
    app.add_middleware(CloseSessions)
    app.add_middleware(NoteRoute, templates=route_templates(ROUTERS))
    app.add_middleware(
        SessionMiddleware,
        secret_key=settings.secret_key,
        session_cookie=settings.cookie_name("sd_flash"),
        https_only=settings.secure_cookies,
        same_site="lax",
        max_age=None,
    )
    app.add_middleware(CSRF, settings=settings)
    app.add_middleware(SameOrigin, settings=settings)
    app.add_middleware(NoNulInQuery)
    uploads = dict.fromkeys(UPLOAD_PATHS, settings.max_import_bytes)
    # A photo upload: one file (the API) or up to ten (the entry page's and the new-win
    # page's plain forms), plus the form's fields; multipart bodies only.
    photo_uploads = [
        (re.compile(r"/api/v1/entries/\d{1,10}/photos"), settings.media_max_bytes + 65_536),
        (re.compile(r"/entries(/\d{1,10}/photos)?"), 10 * settings.media_max_bytes + 65_536),
    ]
    app.add_middleware(
        BodyLimit,
        max_bytes=settings.max_body_bytes,
        uploads=uploads,
        upload_patterns=photo_uploads,
    )
    app.add_middleware(SecurityHeaders, settings=settings)
    app.add_middleware(Observe)
    app.add_middleware(Compress)
    app.add_middleware(CorrelationIdMiddleware, header_name="X-Request-ID")
    return app


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/") or "text/html" not in request.headers.get(
        "accept", ""
    )


# Starlette stops reading a form past 1,000 fields or files, as a 400 with this message.
FORM_LIMITS = ("Too many fields.", "Too many files.")


def _too_many_fields(request: Request, detail: str) -> Response:
    """A form that big is an oversized request: 413, saying what the limit is."""
    if _wants_json(request):
        return JSONResponse({"detail": "REQUEST_TOO_LARGE", "message": detail}, 413)
    return render(request, "errors/413.html", {"message": detail}, status_code=413)


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(LoginRequired)
    async def login_required(request: Request, exc: LoginRequired) -> Response:
        return redirect(request, f"/login?next={quote(exc.next_url)}")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 400 and str(exc.detail).startswith(FORM_LIMITS):
            return _too_many_fields(request, str(exc.detail))
        if _wants_json(request) or exc.status_code not in (404, 405):
            return JSONResponse({"detail": exc.detail}, exc.status_code, headers=exc.headers)
        user = await error_page_user(request)
        return render(request, "errors/404.html", {"user": user}, status_code=404)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        errors = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
        return JSONResponse({"detail": errors}, status_code=422)

    async def database_down(request: Request, exc: Exception) -> Response:
        cause = getattr(exc, "orig", None) or exc
        log.error("database unavailable: %s: %.200s", type(cause).__name__, cause)
        headers = {"Retry-After": RETRY_AFTER_SECONDS}
        if _wants_json(request):
            return JSONResponse({"detail": "DATABASE_UNAVAILABLE"}, 503, headers=headers)
        page = render(request, "errors/503.html", status_code=503)
        page.headers.update(headers)
        return page

    for unavailable in DATABASE_UNAVAILABLE:
        app.add_exception_handler(unavailable, database_down)

    @app.exception_handler(Exception)
    async def crash(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error", exc_info=exc)
        request_id = correlation_id.get() or ""
        headers = {"X-Request-ID": request_id}
        if _wants_json(request):
            return JSONResponse(
                {"detail": "INTERNAL_ERROR", "request_id": request_id}, 500, headers=headers
            )
        page = render(request, "errors/500.html", {"request_id": request_id}, status_code=500)
        page.headers.update(headers)
        return page
