"""Development outbox: every mail the app sent (or failed to send), newest first, at /dev/mail.

Only in development (main.py includes this router only then) and only for this machine: a
client that is not loopback, or a Host header that names another site (DNS rebinding), gets
the 404 that production gives everyone.
"""

from ipaddress import ip_address

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from starlette.responses import Response

from app import mail
from app.security import LOOPBACK_HOSTS
from app.templating import render

router = APIRouter(include_in_schema=False)
# The kept HTML is shown in a sandboxed frame under its own policy: no script, no requests
# (but its inline styles), no forms, framed only by /dev/mail.
MAIL_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'none'; "
    "base-uri 'none'; frame-ancestors 'self'; sandbox"
)


def _for_this_machine(request: Request) -> None:
    settings = request.app.state.settings
    client = request.client.host if request.client else ""
    host = request.url.hostname or ""
    known = {name.strip("[]") for name in LOOPBACK_HOSTS} | {settings.origin_host}
    if not (settings.dev and _loopback(client) and host in known):
        raise HTTPException(404)


def _loopback(address: str) -> bool:
    try:
        return ip_address(address).is_loopback
    except ValueError:
        return False


@router.get("/dev/mail")
async def outbox(request: Request) -> Response:
    _for_this_machine(request)
    mails = await run_in_threadpool(mail.kept, request.app.state.settings.outbox_dir)
    return render(request, "dev/mail.html", {"mails": mails})


@router.get("/dev/mail/{mail_id}.html")
async def mail_html(request: Request, mail_id: str) -> Response:
    _for_this_machine(request)
    kept = await run_in_threadpool(mail.kept_one, request.app.state.settings.outbox_dir, mail_id)
    if kept is None or not kept.html:
        raise HTTPException(404)
    headers = {"Content-Security-Policy": MAIL_CSP, "X-Frame-Options": "SAMEORIGIN"}
    return Response(kept.html, media_type="text/html", headers=headers)
