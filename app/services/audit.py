"""Account activity: the audit trail (recorded, pruned, put into words) and signed-in sessions.

Retention: an event is kept while it is at most 90 days old and among the user's newest
200; every write prunes the rest with one indexed DELETE, so the table never grows unbounded.
"""

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import col

from app.auth import hash_token, revoke_sessions
from app.models import AccessToken, AuditEvent, User
from app.models.audit import DETAIL_MAX, USER_AGENT_MAX
from app.models.base import utcnow

KEEP_FOR = timedelta(days=90)
KEEP_EVENTS = 200
RECENT = 20

WORDS = {
    "login": "Signed in",
    "login_failed": "Failed sign-in attempt",
    "logout": "Signed out",
    "password_changed": "Changed the password",
    "password_reset": "Reset the password by email",
    "email_change_requested": "Asked to change the email address",
    "email_changed": "Changed the email address",
    "export": "Exported the diary",
    "sessions_revoked": "Signed out the other sessions",
    "totp_enabled": "Turned on two-step sign-in with an app",
    "totp_disabled": "Turned off two-step sign-in with an app",
    "recovery_code_used": "Used a recovery code",
    "recovery_codes_renewed": "Made new recovery codes",
    "passkey_added": "Added a passkey",
    "passkey_removed": "Removed a passkey",
}
BROWSERS = (
    ("Edg/", "Edge"),
    ("OPR/", "Opera"),
    ("Firefox/", "Firefox"),
    ("Chrome/", "Chrome"),
    ("Safari/", "Safari"),
    ("curl/", "curl"),
    ("python-httpx", "a Python script"),
)
SYSTEMS = (
    ("Android", "Android"),
    ("iPhone", "iOS"),
    ("iPad", "iPadOS"),
    ("Windows", "Windows"),
    ("Mac OS X", "macOS"),
    ("CrOS", "ChromeOS"),
    ("Linux", "Linux"),
)


@dataclass(frozen=True)
class Origin:
    """Where a request came from, and when, as the audit trail keeps it: an event recorded
    after the answer keeps the time it happened, so the trail's order is the requests'."""

    ip: str = ""
    user_agent: str = ""
    at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True)
class Activity:
    """One event put into words for a person (the page and the JSON API show the same)."""

    kind: str
    summary: str
    ip: str
    device: str
    created_at: datetime
    local_time: str
    ago: str


async def add(
    session: AsyncSession, *, user_id: uuid.UUID, kind: str, origin: Origin, detail: str = ""
) -> None:
    """Add an event to the caller's transaction (the caller commits) and prune old ones."""
    session.add(
        AuditEvent(
            user_id=user_id,
            kind=kind,
            ip=origin.ip[:45],
            user_agent=origin.user_agent[:USER_AGENT_MAX],
            detail=detail[:DETAIL_MAX],
            created_at=origin.at,
        )
    )
    oldest_kept = (
        select(col(AuditEvent.id))
        .where(col(AuditEvent.user_id) == user_id)
        .order_by(col(AuditEvent.id).desc())
        .offset(KEEP_EVENTS)
        .limit(1)
        .scalar_subquery()
    )
    prune = delete(AuditEvent).where(
        col(AuditEvent.user_id) == user_id,
        or_(col(AuditEvent.created_at) < utcnow() - KEEP_FOR, col(AuditEvent.id) <= oldest_kept),
    )
    # Pruned rows are never loaded in this session: skip fetching their ids to sync it.
    await session.execute(prune.execution_options(synchronize_session=False))


async def record(
    *, session: AsyncSession, user_id: uuid.UUID, kind: str, origin: Origin, detail: str = ""
) -> None:
    """Record an event on its own (after the answer went out); a deleted account records nothing."""
    await add(session, user_id=user_id, kind=kind, origin=origin, detail=detail)
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()


async def recent(
    *, session: AsyncSession, user: User, limit: int = RECENT, now: datetime | None = None
) -> list[Activity]:
    """The user's newest events, newest first, in words and in the user's time zone."""
    stmt = (
        select(AuditEvent)
        .where(col(AuditEvent.user_id) == user.id)
        .order_by(col(AuditEvent.created_at).desc(), col(AuditEvent.id).desc())
        .limit(limit)
    )
    events = (await session.execute(stmt)).scalars().all()
    zone, now = ZoneInfo(user.timezone), now or utcnow()
    return [describe(event, zone, now) for event in events]


def describe(event: AuditEvent, zone: ZoneInfo, now: datetime) -> Activity:
    summary = WORDS.get(event.kind, event.kind.replace("_", " ").capitalize())
    if event.detail:
        summary += f" ({event.detail})"
    if event.ip:
        summary += f" from {event.ip}"
    return Activity(
        kind=event.kind,
        summary=summary,
        ip=event.ip,
        device=device(event.user_agent),
        created_at=event.created_at,
        local_time=f"{event.created_at.astimezone(zone):%-d %b %Y, %H:%M}",
        ago=ago(event.created_at, now),
    )


def device(user_agent: str) -> str:
    """'Firefox on Linux' from a User-Agent header; good enough for a person to recognise."""
    browser = next((name for mark, name in BROWSERS if mark in user_agent), "")
    system = next((name for mark, name in SYSTEMS if mark in user_agent), "")
    if browser and system:
        return f"{browser} on {system}"
    return browser or system or "Unknown device"


def ago(when: datetime, now: datetime) -> str:
    seconds = max(0, int((now - when).total_seconds()))
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute")):
        if seconds >= size:
            count = seconds // size
            return f"{count} {unit}{'' if count == 1 else 's'} ago"
    return "just now"


def _others(user: User, keep: str | None, lifetime: int) -> list[ColumnElement[bool]]:
    """Live sessions of the user (younger than the session lifetime) but the one holding keep."""
    conditions: list[ColumnElement[bool]] = [
        col(AccessToken.user_id) == user.id,
        col(AccessToken.created_at) > utcnow() - timedelta(seconds=lifetime),
    ]
    if keep is not None:
        conditions.append(col(AccessToken.token) != hash_token(keep))
    return conditions


async def other_sessions(
    *, session: AsyncSession, user: User, keep: str | None, lifetime: int
) -> int:
    """How many sessions of the user, other than the one holding `keep`, are still live."""
    stmt = select(func.count()).select_from(AccessToken).where(*_others(user, keep, lifetime))
    return int((await session.execute(stmt)).scalar_one())


async def sign_out_others(
    *, session: AsyncSession, user: User, keep: str, lifetime: int, origin: Origin
) -> int:
    """End every session but the current one; how many live ones ended (recorded when > 0)."""
    count = await other_sessions(session=session, user=user, keep=keep, lifetime=lifetime)
    if count:
        detail = f"{count} session{'' if count == 1 else 's'}"
        await add(session, user_id=user.id, kind="sessions_revoked", origin=origin, detail=detail)
    await revoke_sessions(session, user, keep=keep)  # commits the event with it
    return count
