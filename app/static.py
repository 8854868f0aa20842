"""Static assets under content-hashed names, cached for a year; HTML compressed safely.

At start every file under static/ gets a name with its content hash (css/app.css ->
css/app.1a2b3c4d5e6f.css); templates link assets through `static_url()`, so a new build
is a new URL and browsers may keep the old one for a year. Unhashed URLs still work, with
a short cache.
"""

import hashlib
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

from starlette.middleware.gzip import GZipMiddleware
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from app.config import ROOT

STATIC = ROOT / "static"
IMMUTABLE = "public, max-age=31536000, immutable"
SHORT = "public, max-age=300"


def hashed_name(path: str, content: bytes) -> str:
    """css/app.css -> css/app.<first 12 hex digits of its SHA-256>.css"""
    stem, dot, suffix = path.rpartition(".")
    digest = hashlib.sha256(content).hexdigest()[:12]
    return f"{stem}.{digest}.{suffix}" if dot and "/" not in suffix else f"{path}.{digest}"


def build_manifest(root: Path) -> dict[str, str]:
    """Every file under `root` (posix relative path) -> its hashed name."""
    return {
        file.relative_to(root).as_posix(): hashed_name(
            file.relative_to(root).as_posix(), file.read_bytes()
        )
        for file in sorted(root.rglob("*"))
        if file.is_file()
    }


MANIFEST = build_manifest(STATIC)
ORIGINAL = {hashed: path for path, hashed in MANIFEST.items()}


def static_url(path: str) -> str:
    """The URL of a static asset under its hashed name (as given when not under static/)."""
    return f"/static/{MANIFEST.get(path, path)}"


class HashedStaticFiles(StaticFiles):
    """static/ by hashed name (cached for a year) or plain name (cached briefly)."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        original = ORIGINAL.get(path.replace("\\", "/"))
        response = await super().get_response(original or path, scope)
        if response.status_code in (200, 304):
            response.headers["cache-control"] = IMMUTABLE if original else SHORT
        return response


Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

OWN_REQUESTS = {b"same-origin", b"none"}
# Most of level 9's saving on HTML for a fraction of the CPU.
GZIP_LEVEL = 5


class Compress:
    """gzip for text responses over 1 kB, but never for a credentialed cross-site request.

    BREACH needs an attacker's page to make the victim's browser fetch many pages that
    reflect attacker-chosen text next to a secret (the CSRF token), and to watch the sizes.
    Browsers mark such requests `Sec-Fetch-Site: cross-site` (or `same-site`); a request with
    cookies is compressed only when the browser says it came from our own pages
    (`same-origin`) or the address bar (`none`). Requests without cookies (no secrets in the
    answer) and static assets are always compressed.
    """

    def __init__(self, app: Callable[..., Awaitable[None]], minimum_size: int = 1000) -> None:
        self.app = app
        self.gzip = GZipMiddleware(app, minimum_size=minimum_size, compresslevel=GZIP_LEVEL)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.may_compress(scope):
            await self.gzip(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    @staticmethod
    def may_compress(scope: Scope) -> bool:
        if scope["path"].startswith("/static/"):
            return True
        cookie = site = None
        for name, value in scope["headers"]:
            if name == b"cookie":
                cookie = value
            elif name == b"sec-fetch-site":
                site = value
        return cookie is None or site in OWN_REQUESTS
