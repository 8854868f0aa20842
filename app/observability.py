"""Operations: log lines that carry the request id, and Prometheus metrics on /metrics.

Logging: one handler on the root logger writes every line (the app's, uvicorn's, gunicorn's,
any library's) to stderr, as one JSON object per line (LOG_FORMAT=json, the production
default) or as short text (development). Each line has the request id of the request it
belongs to. Access lines come from `Observe` below, never from uvicorn: uvicorn logs the query
string, where a reset link carries its token.

Metrics: requests and latency by method, route template and status class, unhandled
exceptions, and the database pool. With several gunicorn workers, PROMETHEUS_MULTIPROC_DIR
names an empty directory where each worker writes its numbers; /metrics adds them up.
"""

import hmac
import logging
import os
import sys
import time
from collections.abc import Iterable
from typing import Any, TextIO

from asgi_correlation_id import CorrelationIdFilter
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter
from sqlalchemy import Engine, event
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.db import sync_engine

access_log = logging.getLogger("app.access")

# ---------------------------------------------------------------------------------------------
# Logging


class StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever sys.stderr is when a line is written (so test capture sees it)."""

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


def json_formatter() -> logging.Formatter:
    """timestamp, level, logger, message, request_id, then any `extra` fields and a traceback."""
    return JsonFormatter(
        "%(levelname)s %(name)s %(message)s %(correlation_id)s",
        rename_fields={
            "levelname": "level",
            "name": "logger",
            "correlation_id": "request_id",
            "exc_info": "traceback",
        },
        timestamp=True,
        # uvicorn adds a copy of its message with terminal colours: not for a log collector.
        reserved_attrs=[*RESERVED_ATTRS, "color_message"],
    )


def text_formatter() -> logging.Formatter:
    return logging.Formatter("%(levelname)-9s %(name)s [%(correlation_id)s] %(message)s")


def handler(json_lines: bool) -> logging.Handler:
    out = StderrHandler()
    out.setFormatter(json_formatter() if json_lines else text_formatter())
    out.addFilter(CorrelationIdFilter(default_value=None if json_lines else "-"))
    return out


def configure_logging(json_lines: bool) -> None:
    """Route every logger through one stderr handler; safe to call again (tests do)."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, StderrHandler)]:
        root.removeHandler(old)
    root.addHandler(handler(json_lines))
    # Thread, process and task names are in no line we write: logging's documented switches
    # spare every record looking them up (one access line per request).
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    if sys.version_info >= (3, 12):
        logging.logAsyncioTasks = False
    for name in ("app", "uvicorn", "gunicorn"):
        logging.getLogger(name).setLevel(logging.INFO)
    # Servers install their own text handlers; send their lines to ours instead.
    for name in ("uvicorn", "uvicorn.error", "gunicorn.error"):
        server_log = logging.getLogger(name)
        server_log.handlers = []
        server_log.propagate = True
    # Their access lines would hold query strings (reset tokens); `Observe` writes ours.
    for name in ("uvicorn.access", "gunicorn.access"):
        server_log = logging.getLogger(name)
        server_log.handlers = [logging.NullHandler()]
        server_log.propagate = False


def gunicorn_logconfig(json_lines: bool = True) -> dict[str, Any]:
    """gunicorn's `logconfig_dict`: the master's own lines (start, workers) in the same shape.

    The handler is the one create_app() replaces in each worker, so no line is written twice.
    """
    stderr = {"()": "app.observability.handler", "json_lines": json_lines}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "handlers": {"stderr": stderr, "null": {"class": "logging.NullHandler"}},
        "root": {"level": "WARNING", "handlers": ["stderr"]},
        "loggers": {
            "gunicorn.error": {"level": "INFO", "handlers": ["stderr"], "propagate": False},
            "gunicorn.access": {"handlers": ["null"], "propagate": False},
        },
    }


# ---------------------------------------------------------------------------------------------
# Metrics

REQUESTS = Counter(
    "successdiary_http_requests",
    "HTTP requests answered, by method, route template and status class",
    ["method", "route", "status"],
)
LATENCY = Histogram(
    "successdiary_http_request_duration_seconds",
    "Time to answer an HTTP request, by method and route template",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
EXCEPTIONS = Counter(
    "successdiary_http_unhandled_exceptions",
    "Requests that ended in an unhandled exception (answered with the generic 500)",
    ["route", "exception"],
)
# livesum: with several workers, the sum over the live ones (each has its own pool).
POOL_SIZE = Gauge(
    "successdiary_db_pool_size",
    "Connections the database pool keeps open",
    multiprocess_mode="livesum",
)
POOL_CHECKED_OUT = Gauge(
    "successdiary_db_pool_checked_out",
    "Database connections in use by a request",
    multiprocess_mode="livesum",
)
POOL_OVERFLOW = Gauge(
    "successdiary_db_pool_overflow",
    "Database connections open beyond the pool size",
    multiprocess_mode="livesum",
)

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"
ROUTE_SLOT = "successdiary.route"


class RouteSlot:
    """Where NoteRoute leaves the matched route's template for Observe (shared, not copied).

    Paths no route matched (scanners, typos) and requests stopped before the router (CSRF,
    size limit) keep the one "unmatched" label.
    """

    __slots__ = ("root_path", "template")

    def __init__(self, root_path: str) -> None:
        self.root_path = root_path
        self.template = UNMATCHED


def route_templates(routers: Iterable[tuple[str, APIRouter]]) -> dict[int, str]:
    """Each route's full template (/api/v1/entries/{entry_id}): routes keep their own path
    without the prefix they were included with."""
    return {
        id(route): prefix + route.path_format
        for prefix, router in routers
        for route in router.routes
        if isinstance(route, APIRoute)
    }


class Observe:
    """Pure ASGI middleware: one access line and the request metrics per HTTP request.

    Sits just inside CorrelationIdMiddleware, so every request is seen (also those the
    security middleware refuses) and the request id is known when the line is written.
    """

    def __init__(self, app: ASGIApp, *, log_requests: bool = True) -> None:
        self.app = app
        self.log_requests = log_requests
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        slot = scope[ROUTE_SLOT] = RouteSlot(scope.get("root_path", ""))
        status = 0

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        except Exception as exc:
            EXCEPTIONS.labels(slot.template, type(exc).__name__).inc()
            status = status or 500  # ServerErrorMiddleware, outside us, answers the 500
            raise
        finally:
            elapsed = time.perf_counter() - start
            method = scope["method"] if scope["method"] in METHODS else "OTHER"
            count, timer = self._series(method, slot.template, status // 100)
            count.inc()
            timer.observe(elapsed)
            if self.log_requests and access_log.isEnabledFor(logging.INFO):
                self._log(scope, slot.template, status, round(elapsed * 1000, 1))

    def _series(self, method: str, route: str, status_class: int) -> tuple[Any, Any]:
        """The labelled counter and histogram, looked up once per label set (bounded)."""
        key = (method, route, status_class)
        series = self._children.get(key)
        if series is None:
            series = self._children[key] = (
                REQUESTS.labels(method, route, f"{status_class}xx"),
                LATENCY.labels(method, route),
            )
        return series

    @staticmethod
    def _log(scope: Scope, route: str, status: int, duration_ms: float) -> None:
        # scope["path"] has no query string: no reset token reaches the log. The record is
        # made directly: the caller's file and line, which logging would look up, mean nothing.
        method, path = scope["method"], scope["path"]
        fields = {
            "method": method,
            "path": path,
            "route": route,
            "status": status,
            "duration_ms": duration_ms,
        }
        args = (method, path, status, duration_ms)
        record = access_log.makeRecord(
            access_log.name, logging.INFO, "", 0, "%s %s %s %sms", args, None, extra=fields
        )
        access_log.handle(record)


class NoteRoute:
    """Innermost middleware: tells Observe the template of the route the router matched.

    The router records the route in the scope it is given, but a middleware in between
    (asgi-csrf) passes on a copy of the scope, so Observe never sees it there.
    """

    def __init__(self, app: ASGIApp, templates: dict[int, str]) -> None:
        self.app = app
        self.templates = templates

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        finally:
            slot: RouteSlot | None = scope.get(ROUTE_SLOT)
            if slot is not None:
                route = scope.get("route")
                mount = scope.get("root_path", "")[len(slot.root_path) :]
                if route is not None:
                    slot.template = self.templates.get(id(route)) or route.path_format
                elif mount:  # /static: a Mount adds its path to root_path
                    slot.template = mount + "/{path}"


def watch_pool(engine: AsyncEngine | Engine) -> None:
    """Keep the pool gauges current as connections come and go (and at each scrape)."""
    pool = sync_engine(engine).pool

    def checked_out(*_args: Any) -> None:
        read_pool(engine)

    def checked_in(*_args: Any) -> None:
        read_pool(engine, returning=1)  # the event fires before the pool takes it back

    event.listen(pool, "checkout", checked_out)
    event.listen(pool, "checkin", checked_in)
    read_pool(engine)


def read_pool(engine: AsyncEngine | Engine, returning: int = 0) -> None:
    """QueuePool (PostgreSQL and file SQLite) has all three; other pools report what applies."""
    pool: Any = sync_engine(engine).pool
    size = pool.size() if hasattr(pool, "size") else 1
    checked_out = pool.checkedout() if hasattr(pool, "checkedout") else 0
    overflow = pool.overflow() if hasattr(pool, "overflow") else 0
    POOL_SIZE.set(size)
    POOL_CHECKED_OUT.set(max(0, checked_out - returning))
    POOL_OVERFLOW.set(max(0, overflow))


def exposition() -> bytes:
    """The metrics in Prometheus' text format: this process's, or all workers' together."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(REGISTRY)


def mark_worker_gone(pid: int) -> None:
    """gunicorn's child_exit hook: a dead worker's pool stops counting."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(pid)


router = APIRouter()


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    """Prometheus scrape target; with METRICS_TOKEN set, only for `Authorization: Bearer <it>`."""
    token = request.app.state.settings.metrics_token
    if token:
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            return JSONResponse(
                {"detail": "Unauthorized"},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
    read_pool(request.app.state.engine)
    jobs = await run_in_threadpool(jobs_exposition, request.app.state.jobs)
    return Response(exposition() + jobs, media_type=CONTENT_TYPE_LATEST)


def jobs_exposition(jobs: Any) -> bytes:
    """The job queue: depth and oldest wait (read now), and the workers' runs, failures and
    run time per task (summed by the workers into the queue's store, app.jobs)."""
    registry = CollectorRegistry()
    waiting = Gauge("successdiary_jobs_waiting", "Jobs waiting on the queue", registry=registry)
    oldest = Gauge(
        "successdiary_jobs_oldest_waiting_seconds",
        "Age of the oldest waiting job",
        registry=registry,
    )
    up = Gauge("successdiary_jobs_store_up", "1 when the queue's store answers", registry=registry)
    runs = Gauge("successdiary_jobs_runs_total", "Jobs run, per task", ["task"], registry=registry)
    failures = Gauge(
        "successdiary_jobs_failures_total",
        "Job runs that failed (each try), per task",
        ["task"],
        registry=registry,
    )
    seconds = Gauge(
        "successdiary_jobs_run_seconds_total",
        "Time spent running jobs, per task",
        ["task"],
        registry=registry,
    )
    try:
        state = jobs.queue_state()
        waiting.set(state["waiting"])
        oldest.set(state["oldest_waiting_seconds"] or 0)
        for task, (count, failed, spent) in jobs.worker_stats().items():
            runs.labels(task).set(count)
            failures.labels(task).set(failed)
            seconds.labels(task).set(spent)
        up.set(1)
    except Exception:
        up.set(0)
    return generate_latest(registry)
