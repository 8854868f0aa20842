"""HTMX helpers: one response shape for HTMX, another for plain forms (Post/Redirect/Get)."""

from urllib.parse import quote, urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

# What stays as it is in a Location or HX-Redirect value: the characters a URL may carry
# (reserved ones keep their meaning, % keeps earlier escapes); anything else is escaped.
URL_SAFE = "/?#[]@!$&'()*+,;=:%~-._"


def is_htmx(request: Request) -> bool:
    return (
        request.headers.get("hx-request") == "true"
        and "hx-history-restore-request" not in request.headers
    )


def local_path(url: str | None, default: str = "/") -> str:
    """`url` when it is a path on this site, else `default`: the rule for every redirect target.

    A browser drops tab, CR and LF from a URL and reads a backslash as a slash, so
    `/<TAB>/evil.example` or `/\\evil.example` would become `//evil.example`, another site.
    So no character at or below space, no DEL, no backslash, and, once split, neither a
    scheme nor a host.
    """
    if not url or not url.startswith("/") or "\\" in url:
        return default
    if any(c <= " " or "\x7f" <= c <= "\x9f" for c in url):
        return default
    try:
        parts = urlsplit(url)
    except ValueError:  # a bracket in what would be the host
        return default
    return default if parts.scheme or parts.netloc else url


def redirect(request: Request, url: str) -> Response:
    """HTMX follows HX-Redirect; a plain form gets 303 See Other. Only to a local path
    (see local_path), escaped so the header holds nothing but URL characters."""
    location = quote(local_path(url), safe=URL_SAFE)
    if is_htmx(request):
        return Response(status_code=200, headers={"HX-Redirect": location, "Vary": "HX-Request"})
    return RedirectResponse(location, status_code=303, headers={"Vary": "HX-Request"})
