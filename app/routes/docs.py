"""Self-hosted API docs: Swagger UI at /docs, ReDoc at /redoc; no CDN, no inline script.

ReDoc injects <style> elements (styled-components), so its page alone allows styles that
carry a per-request nonce; the rest of the CSP is unchanged and never has unsafe-inline.
"""

import secrets

from fastapi import APIRouter, Request
from starlette.responses import Response

from app.security import CSP
from app.templating import templates

router = APIRouter(include_in_schema=False)
# Two <style> elements the ReDoc bundle inserts while loading, before it knows the nonce:
# an empty one and its fixed CSS. A vendored ReDoc upgrade that changes them fails the docs
# browser test, which names the new hash.
REDOC_STYLE_HASHES = (
    "'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='",
    "'sha256-QMIg+bpjm3JdElJ388KYke01izlUW0UoNOeKjpMxdgc='",
)


@router.get("/docs")
async def swagger(request: Request) -> Response:
    return templates.TemplateResponse(request, "docs/swagger.html", {})


@router.get("/redoc")
async def redoc(request: Request) -> Response:
    nonce = secrets.token_urlsafe(16)
    page = templates.TemplateResponse(request, "docs/redoc.html", {"nonce": nonce})
    page.headers["Content-Security-Policy"] = CSP.replace(
        "style-src 'self'", f"style-src 'self' 'nonce-{nonce}' {' '.join(REDOC_STYLE_HASHES)}"
    )
    return page
