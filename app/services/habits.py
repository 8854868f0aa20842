"""Reminders and digests: who is due when, the mail itself, and sending it once per period.

Every scheduled mail has a key (kind, user, period) and a row in `sent_mail` under a unique
constraint. The scan (app/jobs.py, every minute, or with an explicit `now` in the tests) finds
who is due in their own time zone, inserts the rows it can (a row already there means the
period is done or on its way) and queues one job per new row. The job claims its row (only the
latest `attempt` may), sends, and marks it sent. A consumer killed mid-job leaves its row
`queued` or `sending`: once older than the lease (JOBS_LEASE_SECONDS) the next scan queues it
again with a new attempt, so nothing is lost, and the old attempt can no longer send.

Reminder: at reminder_time local time on a reminder day (ISO weekday), only if that local day
has no win, at most once per local day (the key is the local date, so a repeated hour when
clocks go back sends nothing twice, and a time skipped when they go forward is sent at the
first minute after it). Digest: weekly on the morning (DIGEST_HOUR) of the user's week start,
monthly on the 1st, covering the period just ended.
"""

import hashlib
import logging
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from email.message import EmailMessage
from typing import Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app import mail
from app.config import Settings
from app.models import Category, Entry, SentMail, User
from app.services import Problem, money, stats

log = logging.getLogger("app.habits")

DIGEST_HOUR = 7  # the digest goes out from 07:00 local time on its day
REMINDER_WINDOW = timedelta(hours=3)  # a reminder missed for longer (no worker) is dropped
TEST_DIGESTS_PER_HOUR = 5
UNSUBSCRIBE_SALT = "unsubscribe"
Kind = Literal["reminder", "weekly", "monthly", "test"]
Topic = Literal["reminder", "digest"]


class HabitsError(Problem):
    """A refused request (the route turns it into its answer)."""

    def __init__(self, message: str) -> None:
        super().__init__("digest", message)


def zone(user: User) -> ZoneInfo:
    return ZoneInfo(user.timezone)


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


def due(user: User, now: datetime) -> list[tuple[Kind, date]]:
    """What `user` is due at `now` (aware): (kind, period) pairs, keys not yet checked."""
    local = now.astimezone(zone(user))
    today = local.date()
    found: list[tuple[Kind, date]] = []
    if user.reminder_time and str(local.isoweekday()) in user.reminder_days:
        start = _minutes(user.reminder_time)
        minute = local.hour * 60 + local.minute
        if start <= minute < start + REMINDER_WINDOW.total_seconds() // 60:
            found.append(("reminder", today))
    if user.digest == "weekly" and local.weekday() == user.week_start and local.hour >= DIGEST_HOUR:
        found.append(("weekly", today - timedelta(days=7)))
    if user.digest == "monthly" and local.day == 1 and local.hour >= DIGEST_HOUR:
        found.append(("monthly", (today - timedelta(days=1)).replace(day=1)))
    return found


def period_end(kind: Kind, start: date) -> date:
    """The last day (inclusive) a digest starting on `start` covers."""
    if kind == "monthly":
        return (start.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
    return start + timedelta(days=6)


def key(kind: Kind, user_id: uuid.UUID, period: date) -> str:
    return f"{kind}:{user_id}:{period.isoformat()}"


@dataclass(frozen=True)
class Queued:
    """One job to put on the queue: send the row `key` if it still holds `attempt`."""

    key: str
    attempt: int


async def scan(
    *, session: AsyncSession, now: datetime, lease_seconds: float, limit: int = 50_000
) -> list[Queued]:
    """Rows for everyone due at `now` that has none yet, and stale rows taken over; the jobs
    to queue for them (the caller queues them once this returns)."""
    stmt = (
        select(User)
        .where(
            col(User.is_active),
            col(User.is_verified),
            or_(col(User.reminder_time).is_not(None), col(User.digest) != "off"),
        )
        .limit(limit)
    )
    wanted: dict[str, tuple[uuid.UUID, Kind, date]] = {}
    for user in (await session.execute(stmt)).scalars():
        for kind, period in due(user, now):
            wanted[key(kind, user.id, period)] = (user.id, kind, period)
    queued: list[Queued] = []
    if wanted:
        keys = list(wanted)
        existing: set[str] = set()
        for i in range(0, len(keys), 500):
            rows = await session.execute(
                select(col(SentMail.key)).where(col(SentMail.key).in_(keys[i : i + 500]))
            )
            existing.update(rows.scalars())
        new = [k for k in keys if k not in existing]
        for k in new:
            user_id, kind, period = wanted[k]
            session.add(SentMail(key=k, user_id=user_id, kind=kind, period=period, claimed_at=now))
        try:
            await session.commit()
            queued += [Queued(k, 1) for k in new]
        except IntegrityError:  # another scan inserted some at the same moment: one by one
            await session.rollback()
            for k in new:
                user_id, kind, period = wanted[k]
                try:
                    session.add(
                        SentMail(key=k, user_id=user_id, kind=kind, period=period, claimed_at=now)
                    )
                    await session.commit()
                    queued.append(Queued(k, 1))
                except IntegrityError:
                    await session.rollback()
    queued += await take_over_stale(session=session, now=now, lease_seconds=lease_seconds)
    return queued


async def take_over_stale(
    *, session: AsyncSession, now: datetime, lease_seconds: float
) -> list[Queued]:
    """Rows left queued or sending for longer than the lease (their job was lost with a killed
    consumer, or is stuck): a new attempt each, which the old one can no longer use."""
    stale = now - timedelta(seconds=lease_seconds)
    rows = (
        await session.execute(
            select(col(SentMail.key), col(SentMail.attempt)).where(
                col(SentMail.status).in_(("queued", "sending")), col(SentMail.claimed_at) < stale
            )
        )
    ).all()
    taken: list[Queued] = []
    for row_key, attempt in rows:
        result = await session.execute(
            update(SentMail)
            .where(
                col(SentMail.key) == row_key,
                col(SentMail.attempt) == attempt,
                col(SentMail.status).in_(("queued", "sending")),  # not sent meanwhile
                col(SentMail.claimed_at) < stale,
            )
            .values(attempt=attempt + 1, status="queued", claimed_at=now)
        )
        if getattr(result, "rowcount", 0) == 1:
            taken.append(Queued(row_key, attempt + 1))
    await session.commit()
    if taken:
        log.warning("%d scheduled mails taken over after their lease", len(taken))
    return taken


async def queue_test_digest(*, session: AsyncSession, user: User, now: datetime) -> Queued:
    """A digest of the period just ended (weekly when digests are off), now; 5 an hour."""
    hour_ago = now - timedelta(hours=1)
    recent = await session.scalar(
        select(func.count())
        .select_from(SentMail)
        .where(
            col(SentMail.user_id) == user.id,
            col(SentMail.kind) == "test",
            col(SentMail.claimed_at) >= hour_ago,
        )
    )
    if (recent or 0) >= TEST_DIGESTS_PER_HOUR:
        raise HabitsError(f"At most {TEST_DIGESTS_PER_HOUR} test digests an hour.")
    today = now.astimezone(zone(user)).date()
    if user.digest == "monthly":
        period = (today.replace(day=1) - timedelta(days=1)).replace(day=1)
    else:
        period = today - timedelta(days=7)
    row_key = f"test:{user.id}:{uuid.uuid4().hex}"
    session.add(SentMail(key=row_key, user_id=user.id, kind="test", period=period, claimed_at=now))
    await session.commit()
    return Queued(row_key, 1)


# What the worker does with one row.


def _this_attempt(job: Queued, *status: str) -> Any:
    """The job's row while it is still this attempt's (and in `status`, if given)."""
    return update(SentMail).where(
        col(SentMail.key) == job.key,
        col(SentMail.attempt) == job.attempt,
        *(col(SentMail.status) == s for s in status),
    )


async def claim(session: AsyncSession, job: Queued, now: datetime) -> SentMail | None:
    """The row, now `sending` for this attempt; None when done, skipped, taken over, or
    already `sending`: a job that died mid-send may have sent it, and only the lease's
    takeover (a new attempt) sends again."""
    result = await session.execute(
        _this_attempt(job, "queued").values(status="sending", claimed_at=now)
    )
    await session.commit()
    if getattr(result, "rowcount", 0) != 1:
        return None
    return (
        await session.execute(select(SentMail).where(col(SentMail.key) == job.key))
    ).scalar_one()


def mark_sent_statement(job: Queued, now: datetime) -> Any:
    """Sent, if the row is still this attempt's and sending (a compare-and-set)."""
    return _this_attempt(job, "sending").values(status="sent", sent_at=now)


async def finish(session: AsyncSession, job: Queued, status: str, now: datetime) -> None:
    await session.execute(_this_attempt(job).values(status=status, sent_at=now))
    await session.commit()


async def release(session: AsyncSession, job: Queued) -> None:
    """Sending failed (SMTP down): back to queued, so this job's retry may claim it again."""
    await session.execute(_this_attempt(job).values(status="queued"))
    await session.commit()


async def has_win(session: AsyncSession, user: User, day: date) -> bool:
    stmt = select(col(Entry.id)).where(
        col(Entry.user_id) == user.id, col(Entry.day) == day, col(Entry.deleted_at).is_(None)
    )
    return (await session.execute(stmt.limit(1))).first() is not None


@dataclass
class Digest:
    kind: Kind
    date_from: date
    date_to: date
    count: int = 0
    days: int = 0
    streak: int = 0
    categories: list[tuple[str, list[str]]] = field(default_factory=list)
    money_total: Decimal | None = None
    base_currency: str = ""
    memory: tuple[date, str] | None = None


async def digest(session: AsyncSession, user: User, kind: Kind, start: date) -> Digest:
    """The period's wins by category (titles), counts, streak, money and one memory."""
    end = period_end("monthly" if kind == "monthly" else "weekly", start)
    stmt = (
        select(col(Entry.day), col(Entry.title), col(Category.name))
        .select_from(Entry)
        .outerjoin(Category, col(Category.id) == col(Entry.category_id))
        .where(
            col(Entry.user_id) == user.id,
            col(Entry.deleted_at).is_(None),
            col(Entry.day) >= start,
            col(Entry.day) <= end,
        )
        .order_by(col(Entry.day), col(Entry.id))
    )
    grouped: dict[str, list[str]] = defaultdict(list)
    days: set[date] = set()
    result = Digest(kind, start, end, base_currency=user.base_currency)
    for day, title, category in (await session.execute(stmt)).all():
        grouped[category or "Uncategorised"].append(title)
        days.add(stats.as_date(day))
        result.count += 1
    result.days = len(days)
    result.categories = sorted(grouped.items(), key=lambda item: (-len(item[1]), item[0]))
    result.streak = (await stats.streaks(session=session, user=user, date_to=end)).current
    figures = await money.money_stats(
        session=session, user=user, period="day", date_from=start, date_to=end
    )
    if figures.count:
        result.money_total = figures.total
    memories = await stats.on_this_day(session=session, user=user, today=end + timedelta(days=1))
    if memories:
        result.memory = (memories[0].entry.day, memories[0].entry.title)
    return result


def unsubscribe_token(secret: str, user_id: uuid.UUID, topic: Topic) -> str:
    """Signed, for this one purpose (its own salt) and one kind of mail of one user."""
    return URLSafeSerializer(secret, salt=UNSUBSCRIBE_SALT).dumps([str(user_id), topic])


def read_unsubscribe_token(secret: str, token: str) -> tuple[uuid.UUID, Topic] | None:
    try:
        user_id, topic = URLSafeSerializer(secret, salt=UNSUBSCRIBE_SALT).loads(token)
        if topic not in ("reminder", "digest"):
            return None
        return uuid.UUID(str(user_id)), topic
    except (BadSignature, ValueError, TypeError):
        return None


async def unsubscribe(*, session: AsyncSession, secret: str, token: str) -> Topic | None:
    """Turn the token's kind of mail off for its user; None for a bad token (or no user)."""
    found = read_unsubscribe_token(secret, token)
    if found is None:
        return None
    user = await session.get(User, found[0])
    if user is None:
        return None
    if found[1] == "reminder":
        user.reminder_time = None
    else:
        user.digest = "off"
    await session.commit()
    return found[1]


def message(settings: Settings, user: User, row: SentMail, context: dict[str, Any]) -> EmailMessage:
    """The mail for a row: text and HTML, List-Unsubscribe (RFC 8058) and a Message-ID made
    from the row's key (a copy sent again after a crash is the same message)."""
    topic: Topic = "reminder" if row.kind == "reminder" else "digest"
    link = (
        f"{settings.base_url}/unsubscribe/{unsubscribe_token(settings.secret_key, user.id, topic)}"
    )
    template = "reminder" if topic == "reminder" else "digest"
    msg = mail.build_message(
        settings, user.email, template, unsubscribe_url=link, settings_url="/settings", **context
    )
    msg["List-Unsubscribe"] = f"<{link}>"
    msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    domain = urlsplit(settings.base_url).hostname or "successdiary.local"
    digest_of_key = hashlib.sha256(row.key.encode()).hexdigest()[:32]
    msg["Message-ID"] = f"<{digest_of_key}@{domain}>"
    return msg


async def prepare(
    session: AsyncSession, settings: Settings, row: SentMail, now: datetime
) -> EmailMessage | None:
    """The mail for a claimed row, or None when it is no longer wanted (a win that day,
    reminders or digests turned off, the account gone)."""
    user = await session.get(User, row.user_id)
    if user is None or not user.is_active:
        return None
    period = stats.as_date(row.period)
    if row.kind == "reminder":
        if not user.reminder_time or await has_win(session, user, period):
            return None
        return message(settings, user, row, {"day": period.strftime("%A %-d %B")})
    kind: Kind = "monthly" if user.digest == "monthly" else "weekly"
    if row.kind != "test":
        if user.digest != row.kind:
            return None
        kind = "monthly" if row.kind == "monthly" else "weekly"
    summary = await digest(session, user, kind, period)
    return message(settings, user, row, {"digest": summary, "test": row.kind == "test"})
