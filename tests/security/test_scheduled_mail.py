"""Row 44: scheduled mail at most once per user and period, even when the consumer is killed
mid-job; one-click unsubscribe (RFC 8058) with a signed single-purpose token, no session."""

import asyncio
import os
import random
import socket
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP
from fastapi import FastAPI
from itsdangerous import URLSafeSerializer
from sqlalchemy import Connection, Transaction, func, select, update
from sqlmodel import col

from app.jobs import Jobs, make_sync_engine, send_commit
from app.models import SentMail, User
from app.services import habits
from tests.conftest import Mailbox, free_port
from tests.factories import PASSWORD, bearer_token, make_user, sign_in
from tests.worker import Worker, clear_store, queue_settings, wait_for

BURST = 200
KILLS = 10
GRACE_SECONDS = 5.0  # what FinishingSMTP gives a message whose sender hung up


class FinishingSMTP(SMTP):
    """aiosmtpd, but like Postfix or Exim: a message whose final "." came in before the
    client hung up is still taken. Stock aiosmtpd cancels its reader at EOF, dropping a
    message whose end sits unread in its buffer, which no real mail server does; here the
    reader gets GRACE_SECONDS to finish what was received, however busy the machine."""

    def eof_received(self) -> bool | None:
        handler = self._handler_coroutine
        if handler is not None:
            self.loop.call_later(GRACE_SECONDS, handler.cancel)
        return True


class FinishingController(Controller):
    def factory(self) -> SMTP:
        return FinishingSMTP(self.handler, **self.SMTP_kwargs)


async def _digest_mail(client: httpx.AsyncClient, mailbox: Mailbox, email: str) -> Any:
    token = await bearer_token(client, email)
    answer = await client.post(
        "/api/v1/users/me/digest/test", headers={"Authorization": f"Bearer {token}"}
    )
    assert answer.status_code == 202, answer.text
    return await wait_for(lambda: mailbox.to(email), what="the test digest")


async def test_row44_one_click_unsubscribe_works_without_a_session(
    app: FastAPI, client: httpx.AsyncClient, session: Any, mailbox: Mailbox
) -> None:
    user = await make_user(session, "alice@example.com", digest="weekly", reminder_time="20:00")
    [mail] = await _digest_mail(client, mailbox, "alice@example.com")
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    link = mail["List-Unsubscribe"].strip("<>")
    path = urlsplit(link).path
    assert path.startswith("/unsubscribe/")

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as anonymous:
        # A GET (a link scanner, a preview) changes nothing: it shows a button.
        page = await anonymous.get(path)
        assert page.status_code == 200 and "Stop digests" in page.text
        await session.refresh(user)
        assert user.digest == "weekly"
        # The mail client's one-click POST: no cookie, no CSRF token, no Origin.
        done = await anonymous.post(
            path,
            content=b"List-Unsubscribe=One-Click",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert done.status_code == 200 and "no more digests" in done.text
        assert not anonymous.cookies.get("session")
        # A forged, altered or other-purpose token does nothing.
        other = URLSafeSerializer(app.state.settings.secret_key).dumps([str(user.id), "reminder"])
        for bad in (path[:-2] + "xx", f"/unsubscribe/{other}", "/unsubscribe/e30"):
            refused = await anonymous.post(bad, content=b"List-Unsubscribe=One-Click")
            assert refused.status_code == 404
    await session.refresh(user)
    assert user.digest == "off" and user.reminder_time == "20:00"  # only that kind of mail

    await sign_in(client, "alice@example.com", PASSWORD)
    settings_page = (await client.get("/settings")).text
    assert '<option value="off" selected>Off</option>' in settings_page


async def test_row44_a_token_is_for_one_user_and_one_kind(app: FastAPI, session: Any) -> None:
    secret = app.state.settings.secret_key
    alice = await make_user(session, "alice@example.com", reminder_time="07:00", digest="weekly")
    bob = await make_user(session, "bob@example.com", reminder_time="07:00", digest="weekly")
    token = habits.unsubscribe_token(secret, alice.id, "reminder")
    assert habits.read_unsubscribe_token(secret, token) == (alice.id, "reminder")
    assert habits.read_unsubscribe_token("another-secret-key-of-some-length-000", token) is None
    assert await habits.unsubscribe(session=session, secret=secret, token=token) == "reminder"
    for user in (alice, bob):
        await session.refresh(user)
    assert (alice.reminder_time, alice.digest) == (None, "weekly")
    assert (bob.reminder_time, bob.digest) == ("07:00", "weekly")


async def test_row44_sigkill_during_a_burst_sends_every_mail_exactly_once(
    app: FastAPI, session: Any, tmp_path: Path
) -> None:
    """200 reminders due at once; the consumer is SIGKILLed 10 times while it sends them.
    Jobs lost with it are queued again by the next scan (their rows' lease ran out); every
    user gets exactly one reminder for the day."""
    mailbox = Mailbox(port=free_port())
    smtp = FinishingController(mailbox, hostname="127.0.0.1", port=mailbox.port)
    smtp.start()
    settings = queue_settings(app.state.settings.database_url, mailbox.port, tmp_path)
    jobs = Jobs(settings)
    clear_store(jobs)
    now = datetime.now(UTC)
    due_at = (now - timedelta(minutes=1)).strftime("%H:%M")  # UTC users: due this minute
    hashed = (await make_user(session, "first@example.com")).hashed_password
    session.add_all(
        User(email=f"u{i:03}@example.com", hashed_password=hashed, is_verified=True,
             reminder_time=due_at)
        for i in range(BURST)
    )  # fmt: skip
    await session.commit()

    worker = Worker(settings, tmp_path / "worker.log")
    worker.start()
    rng = random.Random(44)
    at_kills: list[int] = []
    try:
        jobs.scan_at(datetime.now(UTC).isoformat(), time.time())
        await wait_for(lambda: mailbox.messages, what="the first reminders", worker=worker)
        for _ in range(KILLS):
            before = len(mailbox.messages)  # the new consumer is sending again ...
            await wait_for(lambda b=before: len(mailbox.messages) > b, within=60, worker=worker)
            await asyncio.sleep(rng.uniform(0.0, 0.2))  # ... somewhere in the middle of it
            worker.kill()
            at_kills.append(len(mailbox.messages))
            worker.start()
            # The minute's scan (the scheduler's, here with the real clock): rows whose job
            # died with the consumer come back once their lease is over.
            jobs.scan_at(datetime.now(UTC).isoformat(), time.time())

        async def sent() -> int:
            async with app.state.sessionmaker() as s:
                stmt = (
                    select(func.count()).select_from(SentMail).where(col(SentMail.status) == "sent")
                )
                return int((await s.execute(stmt)).scalar_one())

        deadline = time.monotonic() + 90
        while await sent() < BURST:
            assert time.monotonic() < deadline, worker.output()
            # The minute's scan, with the real clock: rows left by a killed job come back.
            await asyncio.sleep(settings.jobs_lease_seconds)
            jobs.scan_at(datetime.now(UTC).isoformat(), time.time())
        await wait_for(lambda: jobs.huey.pending_count() == 0, what="an empty queue")
        await asyncio.sleep(1.0)  # anything still in flight lands
    finally:
        worker.stop()
        smtp.stop()
        clear_store(jobs)
    assert worker.starts == KILLS + 1
    print("mails delivered at each kill:", at_kills)
    counts = Counter(m["To"] for m in mailbox.messages)
    assert set(counts) == {f"u{i:03}@example.com" for i in range(BURST)}
    assert [to for to, n in counts.items() if n != 1] == []
    ids = Counter(m["Message-ID"] for m in mailbox.messages)
    assert len(ids) == BURST and max(ids.values()) == 1


async def test_row44_a_marks_commit_holds_once_sent_however_the_sender_dies(
    app: FastAPI, session: Any
) -> None:
    """PostgreSQL: the mark's COMMIT is queued in the kernel, held there and not waited for,
    right before the mail's final "." (jobs.send_commit). Once queued the mark holds, though
    the sender dies before letting it go or reading the answer (its socket shut, as a SIGKILL
    leaves it); one never queued does not; read normally, the answer leaves the connection
    ready for the next statement."""
    url = app.state.settings.database_url
    if not url.startswith("postgresql"):
        pytest.skip("PostgreSQL's COMMIT; SQLite commits in the process itself")
    user = await make_user(session, "alice@example.com")
    await session.commit()
    engine = make_sync_engine(url)

    def mark(conn: Connection, time_of_day: str) -> Transaction:
        transaction = conn.begin()
        conn.execute(update(User).where(col(User.id) == user.id).values(reminder_time=time_of_day))
        return transaction

    def die(conn: Connection) -> None:
        fd = conn.connection.dbapi_connection.pgconn.socket  # type: ignore[union-attr]
        socket.socket(fileno=os.dup(fd)).shutdown(socket.SHUT_RDWR)
        conn.invalidate()

    async def reminder_time() -> str | None:
        await asyncio.sleep(0.5)  # the server has read what was sent, and ended the session
        await session.refresh(user)
        return user.reminder_time

    try:
        conn = engine.connect()
        mark(conn, "06:15")
        die(conn)  # no COMMIT went out: the server rolls the mark back
        assert await reminder_time() is None

        conn = engine.connect()
        send_commit(conn, mark(conn, "06:30"))
        die(conn)  # the COMMIT went out, its answer was never read
        assert await reminder_time() == "06:30"

        with engine.connect() as conn:
            confirm = send_commit(conn, mark(conn, "07:45"))
            confirm()
            assert not conn.in_transaction()
            mine = select(col(User.reminder_time)).where(col(User.id) == user.id)
            assert conn.execute(mine).scalar_one() == "07:45"
        assert await reminder_time() == "07:45"
    finally:
        engine.dispose()
