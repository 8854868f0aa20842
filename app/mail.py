"""Outgoing mail over SMTP: a text part and an HTML part rendered from templates/mail/."""

import logging
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import aiosmtplib
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
        return False
    return True
