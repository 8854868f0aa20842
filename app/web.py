"""Helpers shared by routes: client address, mail and the audit trail after the answer."""

import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from fastapi import HTTPException, Request, UploadFile
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData
from starlette.datastructures import UploadFile as StarletteUpload
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from app.htmx import redirect
from app.mail import MailJob
from app.models import User
from app.schemas import validation_error
from app.security import form_token_valid
from app.services import Problem, accounts, audit, entries, export, photos, twofactor
from app.services.importer import ImportProblem
from app.services.photos import MAX_PER_ENTRY, PhotoProblem, too_large
from app.templating import flash

T = TypeVar("T")
READ_CHUNK = 256 * 1024  # an upload is read this much at a time


def owned_or_404(row: T | None, detail: str | None = None) -> T:
    """What a service found among the user's own rows (services filter by owner), or 404:
    another user's id answers as a missing one, never a 403 that confirms it exists."""
    if row is None:
        raise HTTPException(404, detail)
    return row


def unprocessable(where: str, field: str, message: str) -> HTTPException:
    """The API's 422 for one field: `where` is "body", "query" or "path"."""
    return HTTPException(422, [validation_error(where, field, message)])


def invalid(problem: Problem, where: str = "body") -> HTTPException:
    """The API's 422 for what a service refused."""
    return unprocessable(where, problem.field, problem.message)


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
    request: Request, result: accounts.LoginResult, user: User | None, email: str, how: str = ""
) -> None:
    """A sign-in on the trail (`how`: the second step or passkey it took); a failure only on a
    real account's, found after the answer."""
    if result is accounts.LoginResult.OK and user is not None:
        audit_after(request, "login", user, how)
    elif result is accounts.LoginResult.BAD_CREDENTIALS:
        where = origin(request)
        after_response(
            request, lambda s: accounts.note_failed_login(session=s, email=email, origin=where)
        )


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


async def read_upload(request: Request, file: UploadFile) -> bytes:
    """An uploaded import file, up to MAX_IMPORT_BYTES (ImportProblem past it, or empty)."""
    limit = request.app.state.settings.max_import_bytes
    content = await file.read(limit + 1)
    if len(content) > limit:
        raise ImportProblem([f"{file.filename}: the file is larger than {limit // 1_000_000} MB."])
    if not content:
        raise ImportProblem([f"{file.filename or 'the file'}: it is empty."])
    return content


PENDING_COOKIE = "sd_pending"


def pending_cookie(request: Request) -> str:
    """The cookie of a sign-in waiting for its second step (no session yet)."""
    return str(request.app.state.settings.cookie_name(PENDING_COOKIE))


async def start_second_step(
    request: Request, session: AsyncSession, user: User, next_path: str
) -> Response:
    """The password was right and the account has a second step: no session yet, a pending
    sign-in (10 minutes, 5 codes) and the page asking for the code."""
    token = await twofactor.start_pending(session=session, user=user, next_path=next_path)
    response = redirect(request, "/login/second-step")
    settings = request.app.state.settings
    response.set_cookie(
        pending_cookie(request),
        token,
        max_age=int(twofactor.PENDING_TTL.total_seconds()),
        httponly=True,
        secure=settings.secure_cookies,
        samesite="lax",
        path="/",
    )
    return response


async def read_bounded(file: StarletteUpload, limit: int) -> bytes:
    """The upload's bytes, refused (413) as soon as they pass `limit`: never more in memory."""
    chunks: list[bytes] = []
    size = 0
    while chunk := await file.read(READ_CHUNK):
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def form_checked(request: Request, form: FormData) -> None:
    """The double-submit check of a multipart page form (app.security.FORM_CHECKED)."""
    settings = request.app.state.settings
    cookie = request.cookies.get(settings.cookie_name("csrftoken"))
    if not form_token_valid(cookie, form.get("csrftoken"), settings.secret_key):
        raise HTTPException(403, "CSRF_FAILED")


async def add_uploads(
    request: Request, session: AsyncSession, user: User, entry_id: int, form: FormData
) -> bool:
    """Add a form's `file`s to the entry, flashing what was added and what was refused;
    False when the form carried no file."""
    files = [f for f in form.getlist("file") if isinstance(f, StarletteUpload) and f.filename]
    alt = str(form.get("alt") or "") or None
    state = request.app.state
    added, problems = 0, []
    for upload in files[: MAX_PER_ENTRY + 1]:
        entry = await entries.get_entry(session=session, user=user, entry_id=entry_id)
        if entry is None:
            break
        try:
            data = await read_bounded(upload, state.settings.media_max_bytes)
            await photos.add_photo(
                session=session,
                user=user,
                entry=entry,
                data=data,
                filename=upload.filename or "",
                alt=alt,
                storage=state.media,
                settings=state.settings,
            )
            added += 1
        except PhotoProblem as exc:
            problems.append(f"{(upload.filename or 'photo')[:80]}: {exc.message}")
            if user in session:
                await session.refresh(user)
    if added:
        flash(request, f"Added {added} photo{'s' if added != 1 else ''}.")
    for problem in problems:
        flash(request, problem, "error")
    return bool(files)
