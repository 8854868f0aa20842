"""Request guards: security headers and CSP, same-origin check, CSRF, body-size limit,
no NUL in a query.

Each is a small pure-ASGI middleware so it costs nothing on the hot path.
"""

import json
import re
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl

from asgi_csrf import asgi_csrf
from itsdangerous import BadSignature
from itsdangerous.url_safe import URLSafeSerializer
from starlette.requests import Request

from app.config import Settings
from app.schemas import validation_error
from app.templating import templates

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "form-action 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ]
)
# Sign-outs: the browser drops its cached pages, cookies and storage for the site with them.
SIGN_OUTS = {"/logout", "/api/v1/auth/cookie/logout", "/api/v1/auth/bearer/logout"}
CLEAR_SITE_DATA = (b"clear-site-data", b'"cache", "cookies", "storage"')
# Pages whose forms may be posted before any session exists: login CSRF is a thing.
ALWAYS_PROTECT = {
    "/login",
    "/login/second-step",
    "/login/passkey/options",
    "/login/passkey",
    "/register",
    "/verify",
    "/verify/resend",
    "/forgot-password",
    "/reset-password",
    "/logout",
}


async def _refuse(scope: Scope, send: Send, status: int, detail: object, message: str) -> None:
    """JSON for the API and scripts, a friendly page for a browser's form."""
    accept = dict(scope["headers"]).get(b"accept", b"")
    if b"text/html" in accept and not scope["path"].startswith("/api/"):
        page = templates.get_template(f"errors/{status}.html")
        body = page.render(request=Request(scope), message=message).encode()
        content_type = b"text/html; charset=utf-8"
    else:
        body = json.dumps({"detail": detail, "message": message}).encode()
        content_type = b"application/json"
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
                (b"cache-control", b"no-store"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class SecurityHeaders:
    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.common = [
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"same-origin"),
            (b"x-frame-options", b"DENY"),
            (b"cross-origin-opener-policy", b"same-origin"),
            (
                b"permissions-policy",
                b"camera=(), microphone=(), geolocation=(), interest-cohort=()",
            ),
            (b"content-security-policy", CSP.encode()),
        ]
        if settings.environment == "production":
            self.common.append(
                (b"strict-transport-security", b"max-age=31536000; includeSubDomains")
            )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope["path"].startswith("/static/")
        sign_out = scope["method"] == "POST" and scope["path"] in SIGN_OUTS

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {name.lower() for name, _ in headers}
                headers.extend(h for h in self.common if h[0] not in names)
                if b"cache-control" not in names and not static:
                    headers.append((b"cache-control", b"no-store"))
                if sign_out and message["status"] < 400 and b"clear-site-data" not in names:
                    headers.append(CLEAR_SITE_DATA)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


class SameOrigin:
    """Unsafe requests from another origin (or the opaque `null` one) stop here.

    Production (and development with a BASE_URL) allows exactly BASE_URL's origin. Development
    without one also allows each loopback name of the port being served, so the page uvicorn
    prints (127.0.0.1) and the one the README names (localhost) both work, [::1] too.
    """

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.origin = settings.origin.encode()
        self.loopback = settings.loopback_origins

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in UNSAFE:
            headers = dict(scope["headers"])
            origin = headers.get(b"origin")
            site = headers.get(b"sec-fetch-site")
            foreign = origin is not None and origin != self.origin
            if origin is not None and foreign and self.loopback:
                foreign = not _served_loopback(origin, scope)
            if foreign or site == b"cross-site":
                await _refuse(
                    scope, send, 403, "CSRF_FAILED", "This request came from another site."
                )
                return
        await self.app(scope, receive, send)


LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "[::1]"}


def _served_loopback(origin: bytes, scope: Scope) -> bool:
    """http://<a loopback name>:<the port this request reached>, nothing else."""
    scheme, _, authority = origin.decode("latin-1").partition("://")
    host, colon, port = authority.rpartition(":")
    if not colon or host not in LOOPBACK_HOSTS:
        host, port = authority, "80"
    server = scope.get("server")
    return (
        scheme == "http"
        and host in LOOPBACK_HOSTS
        and server is not None
        and port == str(server[1])
    )


class BodyLimit:
    """413 before reading a body that is (or turns out to be) larger than the limit."""

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        uploads: dict[str, int] | None = None,
        upload_patterns: list[tuple[re.Pattern[str], int]] | None = None,
    ) -> None:
        self.app = app
        self.default = max_bytes
        self.uploads = uploads or {}  # path -> a larger limit (file uploads)
        # Photo forms: a larger limit for a multipart body only (its files are spooled to
        # disk as they come; an urlencoded body is read whole, so it keeps the default).
        self.patterns = upload_patterns or []

    def _limit(self, scope: Scope) -> int:
        path = scope["path"]
        if path in self.uploads:
            return self.uploads[path]
        content_type = dict(scope["headers"]).get(b"content-type", b"")
        if not content_type.startswith(b"multipart/form-data"):
            return self.default
        return next((n for p, n in self.patterns if p.fullmatch(path)), self.default)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._limit(scope)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await _refuse(scope, send, 413, "REQUEST_TOO_LARGE", self._message(limit))
            return
        received = 0
        started = too_large = False

        async def counted_receive() -> Message:
            nonlocal received, too_large
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:
                too_large = True
                raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if too_large:  # the app caught BodyTooLarge (FastAPI makes it a 400): a 413 instead
                if not started:
                    started = True
                    await _refuse(scope, send, 413, "REQUEST_TOO_LARGE", self._message(limit))
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await _refuse(scope, send, 413, "REQUEST_TOO_LARGE", self._message(limit))

    @staticmethod
    def _message(limit: int) -> str:
        return f"The request is larger than {limit // 1000:,} kB."


class BodyTooLarge(Exception):
    pass


CSRF_NAMESPACE = "csrftoken"  # asgi-csrf's signing salt


def csrf_cookie(settings: Settings) -> str:
    """A Set-Cookie value with a fresh double-submit token, made and flagged as asgi-csrf makes
    it. Given at sign-in, so a token planted or read before then is worth nothing after."""
    token = URLSafeSerializer(settings.secret_key).dumps(secrets.token_urlsafe(16), CSRF_NAMESPACE)
    parts = [f"{settings.cookie_name('csrftoken')}={token}", "Path=/", "SameSite=Lax"]
    return "; ".join([*parts, "Secure"] if settings.secure_cookies else parts)


class CSRF:
    """asgi-csrf's double-submit token: a signed cookie echoed in a form field or header."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.cookie_name = settings.cookie_name("csrftoken")
        self.secret = settings.secret_key
        self.app = asgi_csrf(
            _note_passed(app),
            cookie_name=self.cookie_name,
            signing_secret=settings.secret_key,
            always_protect=ALWAYS_PROTECT,
            cookie_secure=settings.secure_cookies,
            cookie_samesite="Lax",
            send_csrf_failed=self._failed,
            skip_if_scope=_checked_by_route,
        )

    @staticmethod
    async def _failed(scope: Scope, send: Send, message_id: object) -> None:
        await _refuse(
            scope,
            send,
            403,
            "CSRF_FAILED",
            "Your session form expired or was sent from elsewhere. Reload the page and try again.",
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in UNSAFE:
            headers = dict(scope["headers"])
            content_type = headers.get(b"content-type", b"")
            if content_type.startswith(b"multipart/form-data"):
                if b"; boundary=" not in content_type:
                    await _refuse(scope, send, 400, "BAD_REQUEST", "The form could not be read.")
                    return
                if not _checked_by_route(scope) and not self._multipart_passes(scope, headers):
                    await self._failed(scope, send, None)
                    return
        passed: list[bool] = []
        try:
            await self.app({**scope, PASSED: passed}, receive, send)
        except TypeError:
            if passed:  # raised by the app, after the check
                raise
            # asgi-csrf compares with secrets.compare_digest, which raises on a token that
            # is not ASCII (in the header or the form): a forged token, so a 403.
            await self._failed(scope, send, None)

    def _multipart_passes(self, scope: Scope, headers: dict[bytes, bytes]) -> bool:
        """Decided here, never by asgi-csrf: its multipart reader does not work with current
        python-multipart (a TypeError, a 500), so a browser upload must carry the token in
        the X-CSRFToken header, or be a route that checks it (FORM_CHECKED). What asgi-csrf
        lets through unread passes too: a bearer token, or no cookie on an unprotected path."""
        header = headers.get(b"x-csrftoken")
        cookie = Request(scope).cookies.get(self.cookie_name)
        if header is not None and form_token_valid(cookie, header.decode("latin-1"), self.secret):
            return True
        if headers.get(b"authorization", b"").startswith(b"Bearer "):
            return True
        return not headers.get(b"cookie") and scope["path"] not in ALWAYS_PROTECT


PASSED = "sd.csrf_passed"  # a list in the scope: not empty once the check let the request on


def _note_passed(app: ASGIApp) -> ASGIApp:
    async def passed(scope: Scope, receive: Receive, send: Send) -> None:
        if PASSED in scope:
            scope[PASSED].append(True)
        await app(scope, receive, send)

    return passed


# Multipart page forms whose route checks the token itself (see form_token_valid).
FORM_CHECKED = {"/import/preview", "/entries"}  # /entries: the new-win page with photos
FORM_CHECKED_PATTERN = re.compile(r"/entries/\d{1,10}/photos")  # the entry page's photo form


# One-click unsubscribe (RFC 8058, app/routes/unsubscribe.py): mail clients POST there with no
# cookie or token of ours; the signed single-purpose token in the path is checked instead.
SIGNED_PATH_PREFIX = "/unsubscribe/"


def _checked_by_route(scope: Scope) -> bool:
    if scope["path"].startswith(SIGNED_PATH_PREFIX) and scope["method"] == "POST":
        return True
    content_type = dict(scope["headers"]).get(b"content-type", b"")
    path = scope["path"]
    return (
        path in FORM_CHECKED or FORM_CHECKED_PATTERN.fullmatch(path) is not None
    ) and content_type.startswith(b"multipart/form-data")


def form_token_valid(cookie: str | None, submitted: object, secret: str) -> bool:
    """The double-submit check for FORM_CHECKED routes: the form's token is the signed cookie."""
    if (
        not cookie
        or not isinstance(submitted, str)
        or not secrets.compare_digest(cookie.encode(), submitted.encode())
    ):
        return False
    try:
        URLSafeSerializer(secret).loads(cookie, CSRF_NAMESPACE)
    except BadSignature:
        return False
    return True


NUL_IN_QUERY = "A query parameter contains a NUL character (%00), which is never valid here."


class NoNulInQuery:
    """422 for a NUL in any query parameter, before a route or the database sees it:
    PostgreSQL refuses NUL in text, and no stored value holds one. In a query string a NUL
    can only be sent as %00 or as the raw byte, so looking for those two is exact. The JSON
    answer has the shape of FastAPI's own 422 (the one the API documents)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        query: bytes = scope.get("query_string", b"") if scope["type"] == "http" else b""
        if b"%00" in query or b"\x00" in query:
            pairs = parse_qsl(query.decode("latin-1"), keep_blank_values=True)
            name = next((k for k, v in pairs if "\x00" in k + v), "")
            error = validation_error("query", name, NUL_IN_QUERY)
            await _refuse(scope, send, 422, [error], NUL_IN_QUERY)
            return
        await self.app(scope, receive, send)
