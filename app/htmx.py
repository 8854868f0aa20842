"""HTMX helpers: one response shape for HTMX, another for plain forms (Post/Redirect/Get)."""

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response


def is_htmx(request: Request) -> bool:
    return (
        request.headers.get("hx-request") == "true"
        and "hx-history-restore-request" not in request.headers
    )


def redirect(request: Request, url: str) -> Response:
    """HTMX follows HX-Redirect; a plain form gets 303 See Other."""
    if is_htmx(request):
        return Response(status_code=200, headers={"HX-Redirect": url, "Vary": "HX-Request"})
    return RedirectResponse(url, status_code=303, headers={"Vary": "HX-Request"})


def safe_next(url: str | None, default: str = "/") -> str:
    """Only local paths: never //evil.example or https://evil.example."""
    if not url or not url.startswith("/") or url.startswith("//") or "\\" in url:
        return default
    return url
