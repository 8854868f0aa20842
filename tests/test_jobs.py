"""The job queue with the real consumer (a subprocess) and a real SMTP server.

Time is injected: the scan runs at an explicit `now` (the `scan_at` job), never by waiting
for the scheduler's minute. SQLite uses a jobs file; PostgreSQL uses Redis (REDIS_URL_TEST).
"""

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from aiosmtpd.controller import Controller
from fastapi import FastAPI
from sqlalchemy import select

from app.db import dispose
from app.jobs import Jobs, store
from app.main import create_app
from app.models import Category, EmailCode, Entry, SentMail, User
from app.services import habits
from tests.conftest import Mailbox, free_port, make_settings
from tests.factories import make_user
from tests.worker import PUBLIC_URL, Worker, clear_store, queue_settings, wait_for

NEW_YORK = "America/New_York"


@pytest.fixture
async def queue(
    app: FastAPI, mailbox: Mailbox, tmp_path: Path
) -> AsyncIterator[tuple[Jobs, Worker]]:
    settings = queue_settings(app.state.settings.database_url, mailbox.port, tmp_path)
    jobs = Jobs(settings)
    clear_store(jobs)
    worker = Worker(settings, tmp_path / "worker.log")
    worker.start()
    yield jobs, worker
    worker.stop()
    clear_store(jobs)


async def rows(app: FastAPI, **where: Any) -> list[SentMail]:
    async with app.state.sessionmaker() as s:
        stmt = select(SentMail).filter_by(**where)
        return list((await s.execute(stmt)).scalars())


def scan_at(jobs: Jobs, now: datetime) -> None:
    jobs.scan_at(now.isoformat(), time.time())


async def drained(jobs: Jobs) -> None:
    await wait_for(lambda: jobs.huey.pending_count() == 0, what="an empty queue")
    await asyncio.sleep(0.5)  # the last job dequeued is done (a reply to SMTP takes ms)


def test_the_store_follows_the_settings_never_the_working_directory(tmp_path: Path) -> None:
    db = tmp_path / "data" / "diary.sqlite3"
    beside = make_settings(f"sqlite+aiosqlite:///{db}", 1025)
    assert store(beside) == ("sqlite", str(db.parent / "jobs.sqlite3"))
    named = make_settings(f"sqlite+aiosqlite:///{db}", 1025, jobs_url=str(tmp_path / "q.db"))
    assert store(named) == ("sqlite", str(tmp_path / "q.db"))
    redis = make_settings(f"sqlite+aiosqlite:///{db}", 1025, redis_url="redis://h:6379/3")
    assert store(redis) == ("redis", "redis://h:6379/3")
    pg = make_settings("postgresql+psycopg://u:p@db:5432/diary", 1025)
    assert store(pg) == ("postgresql", "postgresql://u:p@db:5432/diary")


async def test_a_reminder_a_minute_ahead_arrives_and_none_for_who_already_wrote(
    app: FastAPI, session: Any, mailbox: Mailbox, queue: tuple[Jobs, Worker]
) -> None:
    jobs, worker = queue
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    soon = now + timedelta(minutes=1)
    local = soon.astimezone(ZoneInfo(NEW_YORK))
    hhmm = local.strftime("%H:%M")
    alice = await make_user(session, "alice@example.com", timezone=NEW_YORK, reminder_time=hhmm)
    bob = await make_user(session, "bob@example.com", timezone=NEW_YORK, reminder_time=hhmm)
    session.add(Entry(user_id=bob.id, day=local.date(), title="Wrote the report"))
    # Carol's reminder days leave out today.
    other_days = "".join(str(d) for d in range(1, 8) if d != local.isoweekday())
    await make_user(
        session, "carol@example.com", timezone=NEW_YORK, reminder_time=hhmm,
        reminder_days=other_days,
    )  # fmt: skip
    await session.commit()

    scan_at(jobs, now)  # a minute early: nobody is due
    await drained(jobs)
    assert await rows(app) == [] and mailbox.messages == []

    scan_at(jobs, soon)
    reminder = await wait_for(
        lambda: mailbox.to("alice@example.com"), what="alice's reminder", worker=worker
    )
    await wait_for(lambda: rows(app, user_id=bob.id, status="skipped"), what="bob skipped")
    text = reminder[0].get_body(("plain",)).get_content()
    assert "No win written yet" in text and f"{PUBLIC_URL}/entries/new" in text
    assert reminder[0]["List-Unsubscribe"].startswith(f"<{PUBLIC_URL}/unsubscribe/")
    assert reminder[0]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    await wait_for(lambda: rows(app, user_id=alice.id, status="sent"), what="alice's row sent")

    # The next minutes of the same local day send nothing more.
    scan_at(jobs, soon + timedelta(minutes=1))
    scan_at(jobs, soon + timedelta(minutes=30))
    await drained(jobs)
    assert [m["To"] for m in mailbox.messages] == ["alice@example.com"]


def test_reminders_keep_to_the_local_day_across_daylight_saving() -> None:
    """New York falls back on 1 November 2026 (01:00-02:00 happens twice) and springs
    forward on 8 March 2026 (02:30 never happens)."""
    user = User(
        email="a@example.com", hashed_password="x", timezone=NEW_YORK, reminder_time="01:30",
        reminder_days="1234567", digest="off", week_start=0,
    )  # fmt: skip
    first = datetime(2026, 11, 1, 5, 30, tzinfo=UTC)  # 01:30 EDT
    second = datetime(2026, 11, 1, 6, 30, tzinfo=UTC)  # 01:30 EST, an hour later
    keys = {habits.key(k, user.id, p) for now in (first, second) for k, p in habits.due(user, now)}
    assert keys == {habits.key("reminder", user.id, date(2026, 11, 1))}  # one key: one mail
    user.reminder_time = "02:30"
    assert habits.due(user, datetime(2026, 3, 8, 6, 59, tzinfo=UTC)) == []  # 01:59 EST
    assert habits.due(user, datetime(2026, 3, 8, 7, 0, tzinfo=UTC)) == [  # 03:00 EDT
        ("reminder", date(2026, 3, 8))
    ]


async def test_the_weekly_digest_holds_the_weeks_wins_in_the_users_zone_and_week_start(
    app: FastAPI, session: Any, mailbox: Mailbox, queue: tuple[Jobs, Worker]
) -> None:
    jobs, worker = queue
    zone = ZoneInfo("Pacific/Auckland")
    sunday = date(2026, 11, 29)  # weeks start on Sunday for this user
    assert sunday.isoweekday() == 7
    user = await make_user(
        session, "alice@example.com", timezone="Pacific/Auckland", week_start=6,
        digest="weekly", base_currency="NZD",
    )  # fmt: skip
    cats = {c.name: c.id for c in (await session.execute(select(Category))).scalars()}
    work, health = list(cats)[:2]
    wins = [
        (sunday - timedelta(days=8), work, "Too early: the week before"),
        (sunday - timedelta(days=7), work, "Opened the week"),
        (sunday - timedelta(days=3), work, "Closed the deal"),
        (sunday - timedelta(days=1), health, "Ran ten kilometres"),
        (sunday, health, "Too late: the new week"),
        (sunday.replace(year=2025), health, "Memory from last year"),
    ]
    for day, category, title in wins:
        amount = {"amount_minor": 1250, "currency": "NZD"} if title == "Closed the deal" else {}
        session.add(
            Entry(user_id=user.id, day=day, title=title, category_id=cats[category], **amount)
        )
    await session.commit()

    # Saturday evening in Auckland is already Sunday in UTC-land, and 06:00 is too early.
    scan_at(jobs, datetime(2026, 11, 28, 20, 0, tzinfo=zone).astimezone(UTC))
    scan_at(jobs, datetime(2026, 11, 29, 6, 0, tzinfo=zone).astimezone(UTC))
    await drained(jobs)
    assert mailbox.messages == []
    scan_at(jobs, datetime(2026, 11, 29, 7, 5, tzinfo=zone).astimezone(UTC))
    msg = (await wait_for(lambda: mailbox.to("alice@example.com"), worker=worker))[0]

    text = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    assert "Sunday 22 November to Saturday 28 November 2026" in text
    assert "3 wins on 3 days" in text and "12.50 NZD" in text
    for title in ("Opened the week", "Closed the deal", "Ran ten kilometres"):
        assert title in text and title in html
    assert "Too early" not in text and "Too late" not in text
    assert f"{work} (2)" in text and f"{health} (1)" in text
    assert "On this day, 29 November 2025: Memory from last year" in text
    assert "<img" not in html and "http://" not in html  # no remote images, no pixels
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    [row] = await wait_for(lambda: rows(app, user_id=user.id, status="sent"), what="row sent")
    assert row.kind == "weekly" and row.period == date(2026, 11, 22)


async def test_mail_queued_while_smtp_was_down_goes_out_when_it_returns(
    app: FastAPI, tmp_path: Path
) -> None:
    """A sign-up's code waits while nothing answers on the SMTP port; the verify page says
    the mail is delayed; once a server listens there the worker's retry delivers it."""
    port = free_port()
    box = Mailbox(port=port)
    settings = queue_settings(app.state.settings.database_url, port, tmp_path)
    web = create_app(make_settings(settings.database_url, port, jobs_url=settings.jobs_url,
                                   redis_url=settings.redis_url, jobs_immediate=False))  # fmt: skip
    clear_store(web.state.jobs)
    worker = Worker(settings, tmp_path / "worker.log")
    worker.start()
    controller = None
    try:
        async with web.router.lifespan_context(web):
            transport = httpx.ASGITransport(app=web, client=("203.0.113.9", 5000))
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
                answer = await c.post(
                    "/api/v1/auth/register",
                    json={"email": "dave@example.com", "password": "quiet harbour lamp 42"},
                )
                assert answer.status_code == 202
                await web.state.background.drain()

                async def failed() -> bool:
                    async with web.state.sessionmaker() as s:
                        code = (await s.execute(select(EmailCode))).scalar_one_or_none()
                        return code is not None and code.mail_failed

                await wait_for(failed, what="the first try failing", worker=worker)
                page = await c.get("/verify/status", params={"email": "dave@example.com"})
                assert "No mail server answered" in page.text  # development: see /dev/mail
                assert "sent again until a server answers" in page.text
                controller = Controller(box, hostname="127.0.0.1", port=port)
                controller.start()
                [mail] = await wait_for(
                    lambda: box.to("dave@example.com"), what="the code", worker=worker
                )
                assert "verification code" in mail.get_body(("plain",)).get_content()

                async def recovered() -> bool:
                    return not await failed()

                # The page stops saying the mail is delayed.
                await wait_for(recovered, what="the failure forgotten", worker=worker)
    finally:
        worker.stop()
        if controller is not None:
            controller.stop()
        clear_store(web.state.jobs)


async def test_healthz_and_metrics_report_the_queue(
    app: FastAPI, client: httpx.AsyncClient, queue: tuple[Jobs, Worker]
) -> None:
    jobs, worker = queue
    worker.stop()  # nothing takes the jobs: they wait
    for _ in range(3):
        scan_at(jobs, datetime.now(UTC))
    web = create_app(jobs.settings)
    transport = httpx.ASGITransport(app=web)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        health = (await c.get("/healthz")).json()
        assert health["queue"]["waiting"] == 3
        assert health["queue"]["oldest_waiting_seconds"] is not None
        metrics = (await c.get("/metrics")).text
        assert "successdiary_jobs_waiting 3.0" in metrics
    worker.start()
    await drained(jobs)
    await wait_for(
        lambda: jobs.worker_stats().get("scan_at", [0])[0] >= 3, what="run counts", worker=worker
    )
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        metrics = (await c.get("/metrics")).text
    assert 'successdiary_jobs_runs_total{task="scan_at"} 3.0' in metrics
    assert 'successdiary_jobs_run_seconds_total{task="scan_at"}' in metrics
    await dispose(web.state.engine)
    await dispose(web.state.read_engine)


async def test_account_mail_a_killed_consumer_was_sending_still_goes_out_once(
    app: FastAPI, mailbox: Mailbox, tmp_path: Path
) -> None:
    """Huey takes a job off the queue when a consumer starts it: the copy waiting a lease
    ahead delivers the code that a consumer SIGKILLed mid-send never sent, and only once."""
    in_flight: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        in_flight.append(writer)  # an SMTP server that never greets: the send hangs here

    stall = await asyncio.start_server(silent, "127.0.0.1", 0)
    stall_port = stall.sockets[0].getsockname()[1]
    settings = queue_settings(app.state.settings.database_url, stall_port, tmp_path)
    web = create_app(make_settings(settings.database_url, stall_port, jobs_url=settings.jobs_url,
                                   redis_url=settings.redis_url, jobs_immediate=False))  # fmt: skip
    clear_store(web.state.jobs)
    first = Worker(settings, tmp_path / "first.log")
    second = Worker(settings.model_copy(update={"smtp_port": mailbox.port}), tmp_path / "b.log")
    first.start()
    try:
        async with web.router.lifespan_context(web):
            transport = httpx.ASGITransport(app=web, client=("203.0.113.10", 5000))
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
                answer = await c.post(
                    "/api/v1/auth/register",
                    json={"email": "erin@example.com", "password": "quiet harbour lamp 42"},
                )
                assert answer.status_code == 202
                await web.state.background.drain()
            await wait_for(lambda: in_flight, what="the code mail in flight", worker=first)
            first.kill()
            second.start()
            [mail] = await wait_for(
                lambda: mailbox.to("erin@example.com"), what="the code", worker=second
            )
            assert "verification code" in mail.get_body(("plain",)).get_content()
            await asyncio.sleep(3 * settings.jobs_lease_seconds)  # past the next copy's lease
            assert len(mailbox.to("erin@example.com")) == 1, "sent once"
    finally:
        second.stop()
        stall.close()
        clear_store(web.state.jobs)
