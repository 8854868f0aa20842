"""Jinja2 environment and the one render helper every page uses."""

import re
from datetime import date, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any

from babel.core import Locale, UnknownLocaleError
from babel.numbers import format_currency
from fastapi.templating import Jinja2Templates
from jinja2.filters import do_urlencode
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import Response

from app.config import ROOT
from app.htmx import is_htmx
from app.static import static_url

templates = Jinja2Templates(directory=ROOT / "templates")
# Templates are read once per process: checking each file's mtime on every render cost 13% of
# the list page. `make run` restarts the server when a template changes (--reload-include).
templates.env.auto_reload = False


def csrf_token(request: Request) -> str:
    get_token = request.scope.get("csrftoken")
    return get_token() if get_token else ""


def flash(request: Request, message: str, kind: str = "success", **extra: object) -> None:
    # Assign (not append in place) so the session middleware sees the change and saves it.
    flashes = [*request.session.get("flashes", []), {"kind": kind, "message": message, **extra}]
    request.session["flashes"] = flashes


def pop_flashes(request: Request) -> list[dict[str, str]]:
    if "session" not in request.scope:
        return []
    return request.session.pop("flashes", [])


def render(
    request: Request,
    page: str,
    context: dict[str, Any] | None = None,
    *,
    partial: str | None = None,
    status_code: int = 200,
) -> Response:
    """The fragment to HTMX, the whole page to everyone else."""
    htmx = partial is not None and is_htmx(request)
    ctx: dict[str, Any] = {"user": None, **(context or {})}
    if not htmx:
        ctx["flashes"] = pop_flashes(request)
    response = templates.TemplateResponse(
        request, partial if htmx and partial else page, ctx, status_code=status_code
    )
    response.headers["Vary"] = "HX-Request"
    return response


@lru_cache(maxsize=4096)
def money(amount: Decimal | None, currency: str | None, locale: str = "en") -> str:
    """An amount in the reader's locale. Babel takes about 50 µs a call and a diary repeats
    its amounts, so the answers are kept (a few thousand short strings)."""
    if amount is None or currency is None:
        return ""
    return format_currency(amount, currency, locale=locale)


DEFAULT_LOCALE = "en"


@lru_cache(maxsize=512)
def _negotiate(accept_language: str) -> str:
    """The first locale Babel knows among the header's languages, by preference."""
    tags = []
    for position, part in enumerate(accept_language.split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        weight = params.strip().removeprefix("q=")
        try:
            q = float(weight) if params else 1.0
        except ValueError:
            q = 0.0
        if tag and tag != "*" and q > 0:
            tags.append((-q, position, tag[:35]))
    for _, _, tag in sorted(tags):
        try:
            return str(Locale.parse(tag, sep="-" if "-" in tag else "_"))
        except (ValueError, TypeError, UnknownLocaleError):
            continue
    return DEFAULT_LOCALE


def request_locale(request: Request) -> str:
    """How figures are formatted: accounts have no locale setting, so the browser's
    Accept-Language decides, else English."""
    return _negotiate(request.headers.get("accept-language", ""))


@lru_cache(maxsize=4096)
def day_label(day: date, today: date | None = None) -> str:
    """'Today', 'Yesterday' or 'Monday 2 March 2026' (cached: strftime by name is slow)."""
    if today is not None and day == today:
        return "Today"
    if today is not None and day == today - timedelta(days=1):
        return "Yesterday"
    return f"{day:%A} {day.day} {day:%B %Y}"


@lru_cache(maxsize=4096)
def short_day(day: date) -> str:
    """'Sun 22 Nov 2026' (cached: a year's heatmap names 365 days)."""
    return day.strftime("%a %-d %b %Y")


_quote = lru_cache(maxsize=4096)(do_urlencode)


def urlencode(value: Any) -> str:
    """Jinja's urlencode; a tag (short text) is quoted once, not on every page listing it."""
    return _quote(value) if isinstance(value, str) and len(value) <= 51 else do_urlencode(value)


# Our own HTML (sanitised Markdown, or escaped snippets with <mark>): tags other than <mark>
# split it; a #tag in the text between them (not in a link or code) becomes a tag-filter link.
_HTML_TAG = re.compile(r"(<(?!/?mark>)[^>]*>)")
_OPENS = re.compile(r"<(a|code|pre)[\s>]")
_CLOSES = re.compile(r"</(a|code|pre)>")
_INLINE_TAG = re.compile(r"(?<![\w&#/])#(?:<mark>(\w[\w-]{0,49})</mark>|(\w[\w-]{0,49}))(?![\w-])")


def _tag_link(match: re.Match[str]) -> str:
    marked, tag = match.groups()
    text = f"<mark>{marked}</mark>" if marked else tag
    href = "/entries?tag=" + _quote((marked or tag).lower())
    return f'<a href="{href}" class="tag-link">#{text}</a>'


@lru_cache(maxsize=2048)
def tag_links(html: str) -> Markup:
    """Safe HTML with its inline #tags as links to the list filtered by that tag."""
    parts, inert = [], 0
    for i, part in enumerate(_HTML_TAG.split(html)):
        if i % 2:  # split() puts each matched tag at an odd index
            inert += bool(_OPENS.match(part)) - bool(_CLOSES.match(part))
        elif inert <= 0:
            part = _INLINE_TAG.sub(_tag_link, part)
        parts.append(part)
    return Markup("".join(parts))  # noqa: S704 (our HTML; only our own links are added)


def choices(rows: Any, empty: str) -> list[tuple[Any, str]]:
    """A select's options from rows with an id and a name, after an empty first choice."""
    return [("", empty), *((row.id, row.name) for row in rows)]


templates.env.globals["csrf_token"] = csrf_token
templates.env.globals["static_url"] = static_url
templates.env.filters["money"] = money
templates.env.filters["day_label"] = day_label
templates.env.filters["urlencode"] = urlencode
templates.env.filters["short_day"] = short_day
templates.env.filters["tag_links"] = tag_links
templates.env.filters["choices"] = choices
