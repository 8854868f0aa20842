"""Answers already computed for a GET: pages and stats, keyed by what they were made from.

The key holds the user's `diary_version`, which database triggers bump on every change to
their entries or categories (migration 0004), and every user field a page shows (email,
theme, time zone, week start, currency), plus the address, the HTMX target, the CSRF token
and the user's today. A change to any of them is a new key, so an answer is never stale and
nothing is ever invalidated; least recently used answers go first past MAX_BYTES.

It is process-local on purpose. The version is read from the database on every request (the
session lookup returns it with the user), so two workers can never serve different answers;
sharing would only raise the hit rate, at the price of copying diary text into Redis.
Only GET and HEAD answers are cached (no write happens in them), and never one that carries a
flash message or a status other than 200.

Bodies are kept gzipped (at app.static.Compress's level): a hit sends them as they are to
a client that may have them compressed, and unzips them (fast) for one that may not.
"""

import functools
import gzip
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from starlette.requests import Request
from starlette.responses import Response

from app.db import SAFE_METHODS
from app.models import User
from app.services.entries import today_for
from app.static import GZIP_LEVEL, Compress
from app.templating import csrf_token

MAX_BYTES = 32 * 1024 * 1024
KEPT_HEADERS = ("content-type", "vary")


@dataclass(frozen=True, slots=True)
class Answer:
    gzipped: bytes
    headers: tuple[tuple[str, str], ...]


class AnswerCache:
    """A least-recently-used map of keys to gzipped answers, bounded by their total size."""

    def __init__(self, max_bytes: int = MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self.hits = self.misses = 0
        self._answers: OrderedDict[tuple, Answer] = OrderedDict()

    def get(self, key: tuple) -> Answer | None:
        answer = self._answers.get(key)
        if answer is None:
            self.misses += 1
            return None
        self.hits += 1
        self._answers.move_to_end(key)
        return answer

    def put(self, key: tuple, answer: Answer) -> None:
        if len(answer.gzipped) > self.max_bytes // 8:
            return
        old = self._answers.pop(key, None)
        if old is not None:
            self.size -= len(old.gzipped)
        self._answers[key] = answer
        self.size += len(answer.gzipped)
        while self.size > self.max_bytes:
            _, dropped = self._answers.popitem(last=False)
            self.size -= len(dropped.gzipped)


def _key(request: Request, user: User, token: str) -> tuple:
    headers = request.headers
    return (
        request.scope["path"],
        request.scope["query_string"],
        headers.get("hx-request", ""),
        headers.get("hx-target", ""),
        headers.get("accept-language", ""),  # money is formatted in the browser's locale
        token,
        user.id,
        user.diary_version,
        user.email,
        user.theme,
        user.timezone,
        user.week_start,
        user.base_currency,
        today_for(user),
    )


def _has_flashes(request: Request) -> bool:
    return "session" in request.scope and bool(request.session.get("flashes"))


def _body_of(answer: Answer, request: Request) -> Response:
    accepts = "gzip" in request.headers.get("accept-encoding", "")
    headers = dict(answer.headers)
    if accepts and Compress.may_compress(request.scope):
        headers["content-encoding"] = "gzip"
        headers["vary"] = ", ".join(filter(None, (headers.get("vary"), "Accept-Encoding")))
        return Response(answer.gzipped, headers=headers)
    return Response(gzip.decompress(answer.gzipped), headers=headers)


def _page_token(request: Request) -> str | None:
    """The CSRF token a page embeds, when it is the browser's own cookie. Without that cookie
    the page would carry a token made for this one answer: such a page is not kept."""
    token = csrf_token(request)
    cookie = request.cookies.get(request.app.state.settings.cookie_name("csrftoken"))
    return token if token and token == cookie else None


Route = TypeVar("Route", bound=Callable[..., Awaitable[Response]])


def cached_answer(*, page: bool = True) -> Callable[[Route], Route]:
    """Serve a GET route from the answer cache: its body runs only on a miss, so it makes its
    database session there (`get_session(request)`) and a hit costs no connection. The route
    takes `request` and `user` (PageUser or CurrentUser) by those names.

    A page (page=True) embeds the browser's CSRF token, which joins the key; JSON does not.
    """

    def decorate(route: Route) -> Route:
        @functools.wraps(route)  # FastAPI reads the route's own signature through __wrapped__
        async def serve(request: Request, user: User, **params: Any) -> Response:
            return await _answer(
                request, user, lambda: route(request=request, user=user, **params), page=page
            )

        return cast(Route, serve)

    return decorate


async def _answer(
    request: Request, user: User, build: Callable[[], Awaitable[Response]], *, page: bool
) -> Response:
    """The answer `build` gives for this request, from the cache when it was made before."""
    if (
        request.method not in SAFE_METHODS
        or _has_flashes(request)
        or not request.app.state.settings.answer_cache
    ):
        return await build()
    token = _page_token(request) if page else ""
    if token is None:
        return await build()
    cache: AnswerCache = request.app.state.answers
    key = _key(request, user, token)
    answer = cache.get(key)
    if answer is not None:
        return _body_of(answer, request)
    response = await build()
    body = getattr(response, "body", None)
    if (
        response.status_code == 200
        and isinstance(body, bytes)
        and "set-cookie" not in response.headers
    ):
        kept = tuple((k, v) for k, v in response.headers.items() if k in KEPT_HEADERS)
        cache.put(key, Answer(gzip.compress(body, GZIP_LEVEL, mtime=0), kept))
    return response
