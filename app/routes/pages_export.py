"""The export page: downloads, a printable view of any dates, and import with a preview.

An uploaded file waits (for an hour at most, readable only by its owner) in a private temp
folder between the preview and the import; the import page streams its progress.
"""

import asyncio
import json
import secrets
import tempfile
import time
from collections.abc import AsyncIterator
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Form, Request, UploadFile
from fastapi.responses import StreamingResponse
from markupsafe import escape
from starlette.responses import Response

from app.deps import PageUser, SessionDep
from app.forms import query_day
from app.htmx import redirect
from app.models import User
from app.schemas import DAY_MIN
from app.security import form_token_valid
from app.services import export, importer
from app.services.entries import today_for
from app.services.importer import ImportProblem
from app.templating import flash, pop_flashes, render, templates
from app.web import EXPORTS_BUSY, ExportResponse, audit_after, read_upload

router = APIRouter(include_in_schema=False)
PENDING = Path(tempfile.gettempdir()) / "successdiary-imports"
PENDING_TTL = 3600


def _pending(token: str) -> Path:
    if not token.replace("-", "").replace("_", "").isalnum() or len(token) > 64:
        raise ImportProblem(["This import has expired. Upload the file again."])
    return PENDING / token


@router.get("/export")
async def export_page(request: Request, user: PageUser) -> Response:
    today = today_for(user)
    ctx = {"user": user, "date_from": today.replace(month=1, day=1), "date_to": today, "errors": []}
    return render(request, "export/page.html", ctx)


@router.get("/export/print")
async def print_view(
    request: Request,
    user: PageUser,
    session: SessionDep,
    date_from: str | None = None,
    date_to: str | None = None,
) -> Response:
    """Every entry between two dates, oldest first, laid out for paper (or Save as PDF)."""
    wanted_from, status_from = query_day(request, date_from)
    wanted_to, status_to = query_day(request, date_to)
    end = wanted_to or today_for(user)
    start = wanted_from or max(DAY_MIN, end - timedelta(days=30))
    status = max(status_from, status_to)
    if not export.slots.take(user.id):
        page = render(request, "errors/429.html", {"message": EXPORTS_BUSY}, status_code=429)
        page.headers["Retry-After"] = "10"
        return page
    try:
        return await _printout(request, user, session, start, end, status)
    except BaseException:
        export.slots.give_back(user.id)  # no answer will hold it
        raise


async def _printout(
    request: Request, user: User, session: SessionDep, start: date, end: date, status: int
) -> Response:
    """The page streamed: its head, the entries a batch at a time, its foot; never the whole
    printout in memory (up to 2,000 entries of up to 100,000 characters)."""
    plan = await export.printout(session, user, start, end)
    ctx = {"user": user, "start": start, "end": end, "cut": plan.cut, "most": export.PRINT_MAX}
    page = templates.get_template("export/print.html").render(
        request=request, flashes=pop_flashes(request), **ctx
    )
    head, _, tail = page.partition("<!--entries-->")
    entries = templates.get_template("export/print_entries.html")
    maker = request.app.state.sessionmaker

    async def stream() -> AsyncIterator[bytes]:
        yield head.encode()
        previous = None
        async for batch in export.print_batches(maker, user, plan):
            yield entries.render(items=batch, previous_day=previous).encode()
            previous = batch[-1].entry.day
        if previous is None:
            yield entries.render(items=[], previous_day=None).encode()
        yield tail.encode()

    audit_after(request, "export", user, "print view")
    return ExportResponse(
        stream(),
        user.id,
        status_code=status,
        media_type="text/html; charset=utf-8",
        headers={"Vary": "HX-Request"},
    )


@router.post("/import/preview")
async def import_preview(
    request: Request,
    user: PageUser,
    session: SessionDep,
    file: UploadFile,
    csrftoken: Annotated[str, Form()] = "",
) -> Response:
    settings = request.app.state.settings
    cookie = request.cookies.get(settings.cookie_name("csrftoken"))
    if not form_token_valid(cookie, csrftoken, settings.secret_key):
        return await _refused_form(request)
    try:
        content = await read_upload(request, file)
        plan = importer.read_file(file.filename or "upload", content, user)
    except ImportProblem as exc:
        today = today_for(user)
        ctx = {
            "user": user,
            "date_from": today.replace(month=1, day=1),
            "date_to": today,
            "errors": exc.errors,
        }
        return render(request, "export/page.html", ctx, status_code=422)
    plan = await importer.preview(session=session, user=user, plan=plan)
    token = secrets.token_urlsafe(24)
    PENDING.mkdir(mode=0o700, exist_ok=True)
    _pending(token).write_bytes(content)
    _pending(token).with_suffix(".json").write_text(
        json.dumps({"user": str(user.id), "name": file.filename, "at": time.time()})
    )
    return render(
        request,
        "export/preview.html",
        {"user": user, "plan": plan, "token": token, "name": file.filename},
    )


async def _refused_form(request: Request) -> Response:
    message = "Your session form expired or was sent from elsewhere. Reload the page and try again."
    return render(request, "errors/403.html", {"message": message}, status_code=403)


def _load(token: str, user: User) -> tuple[str, bytes]:
    meta_path = _pending(token).with_suffix(".json")
    if not meta_path.exists():
        raise ImportProblem(["This import has expired. Upload the file again."])
    meta = json.loads(meta_path.read_text())
    if meta["user"] != str(user.id) or time.time() - meta["at"] > PENDING_TTL:
        raise ImportProblem(["This import has expired. Upload the file again."])
    return meta["name"] or "upload", _pending(token).read_bytes()


def _forget(token: str) -> None:
    for path in (_pending(token), _pending(token).with_suffix(".json")):
        path.unlink(missing_ok=True)


@router.post("/import")
async def run_import(
    request: Request, user: PageUser, token: Annotated[str, Form()] = ""
) -> Response:
    try:
        name, content = _load(token, user)
    except ImportProblem as exc:
        flash(request, exc.errors[0], "error")
        return redirect(request, "/export")
    page = templates.get_template("export/importing.html").render(request=request, user=user)
    head, _, tail = page.partition("<!--progress-->")
    maker, user_id = request.app.state.sessionmaker, user.id

    async def work(queue: asyncio.Queue[str | None]) -> None:
        """The import, in its own session; each finished batch puts a line in the queue."""

        async def progress(done: int, total: int) -> None:
            await queue.put(f'<p class="hint">Imported {done:,} of {total:,} entries…</p>\n')

        try:
            async with maker() as session:
                owner = await session.get(User, user_id)
                assert owner is not None
                try:
                    plan = importer.read_file(name, content, owner)
                    plan = await importer.preview(session=session, user=owner, plan=plan)
                    total = await importer.import_plan(
                        session=session,
                        user=owner,
                        plan=plan,
                        progress=progress,
                        media=request.app.state.media,
                        settings=request.app.state.settings,
                    )
                except ImportProblem as exc:
                    await session.rollback()
                    await queue.put(
                        f'<p class="field-error">Nothing was imported: {escape(exc.errors[0])}</p>'
                    )
                else:
                    noun = "entry" if total == 1 else "entries"
                    done = f"Done: {total:,} {noun} imported, {plan.duplicates:,} already there."
                    await queue.put(f'<p class="font-semibold">{done}</p>')
        finally:
            _forget(token)
            await queue.put(None)

    async def stream() -> AsyncIterator[bytes]:
        yield head.encode()
        queue: asyncio.Queue[str | None] = asyncio.Queue()
        task = asyncio.create_task(work(queue))
        while (line := await queue.get()) is not None:
            yield line.encode()
        await task
        yield tail.encode()

    return StreamingResponse(stream(), media_type="text/html; charset=utf-8")
