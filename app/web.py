"""Helpers shared by routes: login requirement for pages, client address, mail after the answer."""

import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from app.auth import find_session, request_tokens, signed_in
from app.mail import MailJob
from app.models import User
from app.services import accounts, audit, export


class LoginRequired(Exception):
    def __init__(self, next_url: str) -> None:
        self.next_url = next_url


async def page_user(request: Request) -> User:
    """The signed-in user of a page, or a redirect to sign in. One dependency layer, not the
    API's four (FastAPI's per-layer cost was a quarter of a cached page's, measured)."""
    cookie, bearer = request_tokens(request)
    user = signed_in(await find_session(request, cookie, bearer))
    if user is None:
        raise LoginRequired(request.url.path)
    return user


async def error_page_user(request: Request) -> User | None:
    """The signed-in user for an error page (their navigation and theme), or None: an error
    page never fails because the session could not be looked up."""
    cookie, bearer = request_tokens(request)
    if cookie is None and bearer is None:
        return None
    try:
        return signed_in(await find_session(request, cookie, bearer))
    except Exception:  # the page it explains matters more than its menu
        return None


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def after_response(
    request: Request,
    action: Callable[[AsyncSession], Awaitable[MailJob | accounts.NewCode | None]],
) -> None:
    """Run an account action and its mail once the answer is on its way: same timing for all."""
    state = request.app.state
    state.background.spawn(
        accounts.in_background(
            maker=state.sessionmaker,
            limiter=state.limiter,
            action=action,
            queue=state.jobs.queue_mail,
        )
    )


def mail_after(request: Request, *jobs: MailJob) -> None:
    """Queue mail the service decided on once the answer is on its way."""
    state = request.app.state
    for job in jobs:
        state.background.spawn(
            accounts.deliver(limiter=state.limiter, job=job, queue=state.jobs.queue_mail)
        )


def origin(request: Request) -> audit.Origin:
    return audit.Origin(client_ip(request), request.headers.get("user-agent", ""))


def audit_after(request: Request, kind: str, user: User, detail: str = "") -> None:
    """Put an account event on the user's trail after the answer: it never slows the answer."""
    where, user_id = origin(request), user.id
    after_response(
        request,
        lambda s: audit.record(session=s, user_id=user_id, kind=kind, origin=where, detail=detail),
    )


def audit_login(
    request: Request, result: accounts.LoginResult, user: User | None, email: str
) -> None:
    """A sign-in on the trail; a failure only on a real account's, found after the answer."""
    if result is accounts.LoginResult.OK and user is not None:
        audit_after(request, "login", user)
    elif result is accounts.LoginResult.BAD_CREDENTIALS:
        where = origin(request)
        after_response(
            request, lambda s: accounts.note_failed_login(session=s, email=email, origin=where)
        )


PageUser = Annotated[User, Depends(page_user)]


EXPORTS_BUSY = (
    f"{export.EXPORTS_AT_ONCE} exports or print views of your diary are already on their way. "
    "Wait for one to finish, then try again."
)


class ExportResponse(StreamingResponse):
    """A streamed export or print view holding one of its user's `export.slots` (taken by the
    route): given back once the answer is sent, or the client has gone, or it failed. The
    stream is closed then too, not left half-read for the garbage collector (a Markdown zip
    left so wrote its end into a closed buffer)."""

    def __init__(self, content: Any, user_id: uuid.UUID, **kwargs: Any) -> None:
        super().__init__(content, **kwargs)
        self.user_id = user_id

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            export.slots.give_back(self.user_id)
            close = getattr(self.body_iterator, "aclose", None)
            if close is not None:
                await close()
