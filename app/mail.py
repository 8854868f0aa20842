"""Outgoing mail over SMTP: a text part and an HTML part rendered from templates/mail/.

In development every message is also kept in an outbox folder (Settings.outbox_dir, one .eml
file each, the newest OUTBOX_KEEP), sent or not, for /dev/mail to show: a newcomer reads the
code without a mail server, across reloads and whichever process sent it.
"""

import asyncio
import gc
import logging
import os
import re
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Literal

import aiosmtplib
from aiosmtplib.email import extract_recipients, extract_sender, flatten_message
from aiosmtplib.protocol import PERIOD_REGEX, normalize_message_line_endings
from aiosmtplib.typing import SMTPStatus
from anyio import to_thread
from jinja2 import Environment, FileSystemLoader, select_autoescape

from app.config import ROOT, Settings

log = logging.getLogger("app.mail")

_env = Environment(
    loader=FileSystemLoader(ROOT / "templates" / "mail"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


@dataclass
class MailJob:
    """A mail to send after the answer has gone out: template name, recipient, context."""

    template: str
    to: str
    context: dict[str, str] = field(default_factory=dict)
    code_user_id: Any = None


def build_message(settings: Settings, to: str, template: str, **context: object) -> EmailMessage:
    context = {"base_url": settings.base_url, "to": to, **context}
    msg = EmailMessage()
    msg["From"] = settings.mail_from
    msg["To"] = to
    msg["Subject"] = _env.get_template(f"{template}.subject.txt").render(context).strip()
    msg.set_content(_env.get_template(f"{template}.txt").render(context))
    msg.add_alternative(_env.get_template(f"{template}.html").render(context), subtype="html")
    return msg


def _server(settings: Settings) -> dict[str, Any]:
    """How to reach the SMTP server. SMTP_TLS means implicit TLS on port 465 and STARTTLS on
    any other port."""
    return {
        "hostname": settings.smtp_host,
        "port": settings.smtp_port,
        "username": settings.smtp_user,
        "password": settings.smtp_password,
        "use_tls": settings.smtp_tls and settings.smtp_port == 465,
        "start_tls": settings.smtp_tls and settings.smtp_port != 465,
        "timeout": settings.smtp_timeout,
    }


async def send(settings: Settings, msg: EmailMessage) -> bool:
    """Send one message; False (and a log line, never the body) when the server fails."""
    try:
        await aiosmtplib.send(msg, **_server(settings))
    except (aiosmtplib.SMTPException, OSError) as exc:
        log.warning("mail to a user could not be sent: %s", type(exc).__name__)
        problem: str | None = type(exc).__name__
    else:
        problem = None
    if settings.dev:
        await to_thread.run_sync(keep, settings.outbox_dir, msg, problem)
    return problem is None


class Abort(Exception):
    """Raised by send_once's `commit`: the mail must not be sent after all."""


# send_once's `claim` returns a `Commit`; a commit whose answer comes later (PostgreSQL's is
# only sent, jobs.send_commit) returns the `Confirm` that reads it, run after the ".".
Confirm = Callable[[], None]
Commit = Callable[[], Confirm | None]


@contextmanager
def _collector_paused() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


async def send_once(
    settings: Settings,
    msg: EmailMessage,
    claim: Callable[[], Commit],
    *,
    lock: asyncio.Lock | None = None,
) -> Literal["sent", "failed", "aborted"]:
    """Send one message at most once however the process dies. Once the server holds the
    whole message but for DATA's final ".", `claim` runs in a thread (it takes the database
    lock that records the mail as sent, waiting if need be) and returns `commit`, which runs
    on the event loop right before the "." is written, with nothing in between. Killed before
    the commit, the server drops the unfinished message and the mail is sent again later;
    after it, the server gets the ".". `claim` raising Abort (the mail is no longer this
    job's to send), or either failing, ends the connection instead: the server drops it.
    `lock` (db.write_lock) is held from the claim until the "." is written, and the garbage
    collector waits: nothing but the commit's own return stands between the mark and the end.
    A commit that only sends its COMMIT returns a `Confirm`, run once the "." is out.

    Relies on aiosmtplib's protocol (pinned in requirements.lock) for DATA in two writes."""
    smtp = aiosmtplib.SMTP(**_server(settings))
    outcome: Literal["sent", "failed", "aborted"] = "failed"
    problem: str | None = None
    try:
        await smtp.connect()
        sender = extract_sender(msg) or settings.mail_from
        await smtp.mail(str(sender))
        for recipient in extract_recipients(msg):
            await smtp.rcpt(recipient)
        body = PERIOD_REGEX.sub(b"..", normalize_message_line_endings(flatten_message(msg)))
        if not body.endswith(b"\r\n"):
            body += b"\r\n"
        protocol = smtp.protocol
        assert protocol is not None and protocol._command_lock is not None
        async with protocol._command_lock:
            protocol._response_pending = True
            protocol.write(b"DATA\r\n")
            start = await protocol.read_response(timeout=settings.smtp_timeout)
            if start.code != SMTPStatus.start_input:
                raise aiosmtplib.SMTPDataError(start.code, start.message)
            protocol.write(body)
            transport = protocol.transport
            # Every byte but the end on its way first (a transport has no drain event).
            while transport is not None and transport.get_write_buffer_size():  # type: ignore[attr-defined]  # noqa: ASYNC110
                await asyncio.sleep(0.001)
            async with lock or nullcontext():
                try:
                    commit = await to_thread.run_sync(claim)
                    with _collector_paused():  # a collection in here would widen the window
                        confirm = commit()
                        protocol._response_pending = True
                        protocol.write(b".\r\n")
                except Exception:
                    outcome = "aborted"
                    smtp.close()  # the server drops a message it never saw the end of
                    raise
                outcome = "sent"  # from here the server may hold it: never send it again
                if confirm is not None:
                    _confirm(confirm)
            reply = await protocol.read_response(timeout=settings.smtp_timeout)
            if reply.code != SMTPStatus.completed:
                log.warning("the mail server refused a committed mail: %s", reply.code)
        with suppress(aiosmtplib.SMTPException, OSError):
            await smtp.quit()
    except Abort:
        problem = "aborted"
    except (aiosmtplib.SMTPException, OSError) as exc:
        if outcome != "sent":
            log.warning("mail to a user could not be sent: %s", type(exc).__name__)
            problem = type(exc).__name__
    except Exception:
        if outcome == "failed":
            raise
        problem = "aborted"
    finally:
        smtp.close()
    if settings.dev:  # under the lock: no thread of ours runs Python in another's window
        async with lock or nullcontext():
            await to_thread.run_sync(keep, settings.outbox_dir, msg, problem)
    return outcome


def _confirm(confirm: Confirm) -> None:
    """The mail is out: a mark that did not hold after all (the database went away between
    its COMMIT and the answer) is logged, and the row's lease may send the mail again."""
    try:
        confirm()
    except Exception as exc:
        log.error("a sent mail's mark may not have been saved: %s", type(exc).__name__)


OUTBOX_KEEP = 50
DELIVERY = "X-Outbox-Delivery"
KEPT_ID = re.compile(r"\d{20}-[0-9a-f]{8}")


@dataclass(frozen=True)
class KeptMail:
    id: str
    at: datetime
    to: str
    subject: str
    delivery: str
    text: str
    html: str

    @property
    def sent(self) -> bool:
        return self.delivery == "sent"


def keep(folder: Path, msg: EmailMessage, problem: str | None) -> None:
    """Development: file the message (and whether it went out) in the outbox, newest kept."""
    name = f"{time.time_ns():020d}-{secrets.token_hex(4)}"
    delivery = "sent" if problem is None else f"not sent ({problem})"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        partial = folder / f".{name}.tmp"
        partial.write_bytes(f"{DELIVERY}: {delivery}\r\n".encode() + msg.as_bytes())
        os.replace(partial, folder / f"{name}.eml")  # readers never see half a file
        for old in sorted(folder.glob("*.eml"), reverse=True)[OUTBOX_KEEP:]:
            old.unlink(missing_ok=True)
    except OSError as exc:
        log.warning("the development outbox could not keep a mail: %s", exc)


def kept(folder: Path) -> list[KeptMail]:
    """The outbox, newest first."""
    names = sorted(
        (p.stem for p in folder.glob("*.eml") if KEPT_ID.fullmatch(p.stem)), reverse=True
    )
    return [mail for name in names[:OUTBOX_KEEP] if (mail := kept_one(folder, name)) is not None]


def kept_one(folder: Path, mail_id: str) -> KeptMail | None:
    if not KEPT_ID.fullmatch(mail_id):
        return None
    try:
        raw = (folder / f"{mail_id}.eml").read_bytes()
    except OSError:  # never kept, or pruned since
        return None
    msg = message_from_bytes(raw, policy=policy.default)
    parts = {kind: msg.get_body((kind,)) for kind in ("plain", "html")}
    return KeptMail(
        id=mail_id,
        at=datetime.fromtimestamp(int(mail_id[:20]) / 1e9, UTC),
        to=str(msg["To"] or ""),
        subject=str(msg["Subject"] or ""),
        delivery=str(msg[DELIVERY] or ""),
        text=parts["plain"].get_content() if parts["plain"] is not None else "",
        html=parts["html"].get_content() if parts["html"] is not None else "",
    )
