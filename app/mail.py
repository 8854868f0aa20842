"""Outgoing mail over SMTP: a text part and an HTML part rendered from templates/mail/.

In development every message is also kept in an outbox folder (Settings.outbox_dir, one .eml
file each, the newest OUTBOX_KEEP), sent or not, for /dev/mail to show: a newcomer reads the
code without a mail server, across reloads and whichever process sent it.
"""

import logging
import os
import re
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiosmtplib
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


async def send(settings: Settings, msg: EmailMessage) -> bool:
    """Send one message; False (and a log line, never the body) when the server fails."""
    try:
        await aiosmtplib.send(
            msg,
            hostname=settings.smtp_host,
            port=settings.smtp_port,
            username=settings.smtp_user,
            password=settings.smtp_password,
            # SMTP_TLS means implicit TLS on port 465 and STARTTLS on any other port.
            use_tls=settings.smtp_tls and settings.smtp_port == 465,
            start_tls=settings.smtp_tls and settings.smtp_port != 465,
            timeout=settings.smtp_timeout,
        )
    except (aiosmtplib.SMTPException, OSError) as exc:
        log.warning("mail to a user could not be sent: %s", type(exc).__name__)
        problem: str | None = type(exc).__name__
    else:
        problem = None
    if settings.dev:
        await to_thread.run_sync(keep, settings.outbox_dir, msg, problem)
    return problem is None


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
