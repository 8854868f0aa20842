"""The job queue: Huey, stored where the settings say, and every job the app queues.

Store (never the working directory):
- REDIS_URL set: Redis (RedisHuey), for several machines and consumers;
- else JOBS_URL set: that SQLite file (a path, or sqlite:///path);
- else a SQLite DATABASE_URL: jobs.sqlite3 beside the database file;
- else (PostgreSQL without Redis): Huey's own tables (huey_*) in that PostgreSQL database,
  which every machine already reaches, so several consumers work there too.

The web process only queues (account mail after the answer, a test digest); `successdiary
worker` (app.cli) runs the consumer: JOBS_WORKERS threads, and the scheduler that starts the
periodic jobs (the scan for reminders and digests every minute, housekeeping). Each job is a
plain function of picklable values; its coroutine runs on the worker's one event loop
(Runtime), with the worker's own database engine.

Account mail is retried with backoff while SMTP is down (JOBS_RETRY_DELAY_SECONDS, times 1.5
each try, 12 tries: about an hour) and dropped once it is useless (a code past its 10
minutes, a reset link past its hour). Scheduled mail is at-least-once through the database
(app/services/habits.py): a job lost with a killed consumer is queued again by the next scan.

JOBS_IMMEDIATE (the test suite's in-process app) runs each job's coroutine in the web
process's own event loop at once, once, without a queue.
"""

import asyncio
import contextlib
import json
import logging
import os
import select
import socket
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import psycopg
from anyio import to_thread
from huey import Huey, PostgresHuey, RedisHuey, SqliteHuey, crontab
from huey.constants import EmptyData
from huey.signals import SIGNAL_COMPLETE, SIGNAL_ERROR, SIGNAL_EXECUTING, SIGNAL_RETRYING
from psycopg import pq
from sqlalchemy import Connection, Engine, Transaction, create_engine, delete, event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from app import mail
from app.config import ROOT, Settings
from app.db import (
    dispose,
    make_engine,
    make_sessionmaker,
    sqlite_on_connect,
    sync_url,
    write_lock,
)
from app.mail import MailJob
from app.models import AccessToken, AuditEvent, EmailCode
from app.models.base import utcnow
from app.ratelimit import AuthLimiter
from app.services import accounts, audit, habits, money
from app.services.entries import purge_deleted
from app.storage import storage_for

log = logging.getLogger("app.jobs")
T = TypeVar("T")

ACCOUNT_MAIL_RETRIES = 12
RETRY_BACKOFF = 1.5
# How long an account mail is worth sending: a code lives 10 minutes, a reset link an hour.
USEFUL_FOR = {"code": 600, "email_change_code": 600, "reset_password": 3600}
USEFUL_DEFAULT = 24 * 3600
SCHEDULED_RETRIES = 8
METRICS_KEY = "successdiary:metrics"
METRICS_FLUSH_SECONDS = 5.0
CONFIRM_SECONDS = 30.0  # the longest the loop waits for a sent mail's COMMIT to be answered


def store(settings: Settings) -> tuple[str, str]:
    """(kind, where) of the queue's store, as the module's docstring says."""
    if settings.redis_url:
        return "redis", settings.redis_url
    if settings.jobs_url:
        return "sqlite", str(Path(settings.jobs_url.removeprefix("sqlite:///")).resolve())
    if settings.is_sqlite:
        path = settings.database_url.partition(":///")[2].partition("?")[0]
        if path and ":memory:" not in path:
            return "sqlite", str(Path(path).resolve().parent / "jobs.sqlite3")
        return "sqlite", str(ROOT / "jobs.sqlite3")
    url = make_url(settings.database_url).set(drivername="postgresql")
    return "postgresql", url.render_as_string(hide_password=False)


def make_huey(settings: Settings) -> Huey:
    kind, where = store(settings)
    # Immediate mode (the in-process test app) keeps Huey's store in memory: never used.
    options: dict[str, Any] = {"results": False, "utc": True, "immediate": settings.jobs_immediate}
    if kind == "redis":
        return RedisHuey("successdiary", url=where, **options)
    if kind == "sqlite":
        return SqliteHuey("successdiary", filename=where, **options)
    return PostgresHuey("successdiary", dsn=where, **options)


@dataclass
class Context:
    """What a job's coroutine works with: the web app's own, or the worker's (Runtime)."""

    settings: Settings
    maker: async_sessionmaker[AsyncSession]
    limiter: AuthLimiter
    _sync: Engine | None = None
    # PostgreSQL's send_scheduled holds it from the claim to the "." (SQLite's write lock does
    # there): no other job's claim runs Python in a thread then, to keep the GIL from this one
    # between the mark's COMMIT and the mail's end.
    send_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def sync_engine(self) -> Engine:
        """For the one statement that must not yield to the event loop (send_scheduled)."""
        if self._sync is None:
            self._sync = make_sync_engine(self.settings.database_url)
        return self._sync


def _no_checkpoint_at_commit(dbapi_connection: Any, _record: Any) -> None:
    """The commit that grows the WAL past its limit copies it into the database, syncing the
    disk twice, after the commit holds: for the claim's commit, between the mark and the "."
    (send_scheduled). The app's own connections checkpoint instead."""
    dbapi_connection.execute("PRAGMA wal_autocheckpoint=0")


def make_sync_engine(url: str) -> Engine:
    url = sync_url(url)
    if url.startswith("sqlite"):
        # Claimed in a thread, committed on the event loop's (send_scheduled).
        engine = create_engine(url, connect_args={"timeout": 5, "check_same_thread": False})
        event.listen(engine, "connect", sqlite_on_connect)
        event.listen(engine, "connect", _no_checkpoint_at_commit)
        return engine
    return create_engine(url, pool_size=2, max_overflow=4)


def send_commit(conn: Connection, transaction: Transaction) -> mail.Confirm:
    """PostgreSQL: queue the COMMIT in the kernel without waiting for its answer, which the
    callable returned reads (after the mail's "."). Once queued the server commits even if
    this process dies now (closing a socket sends what it holds), so the "." follows at once.
    The COMMIT is held back (TCP_CORK) until the "." is out: sent at once it wakes the server,
    which may take the CPU from this process on a busy machine, while the mark is made and the
    mail not yet ended."""
    pgconn = conn.connection.dbapi_connection.pgconn  # type: ignore[union-attr]
    release = _held(pgconn.socket)
    pgconn.send_query(b"COMMIT")
    while pgconn.flush():  # psycopg keeps libpq non-blocking: wait until the bytes are out
        _wait(pgconn.socket, write=True)

    def confirm() -> None:
        release()
        pgconn.consume_input()
        while pgconn.is_busy():
            _wait(pgconn.socket, write=False)
            pgconn.consume_input()
        statuses = []
        while (result := pgconn.get_result()) is not None:
            statuses.append(result.status)
        if statuses != [pq.ExecStatus.COMMAND_OK]:
            raise psycopg.OperationalError(f"COMMIT answered {statuses}")
        transaction.commit()  # SQLAlchemy's bookkeeping: the server is idle, nothing is sent

    return confirm


def _held(fd: int) -> Callable[[], None]:
    """Hold what is written to the TCP socket `fd` in the kernel until the callable returned
    lets it go (TCP_CORK; Linux also lets it go after 200 ms, or when the socket closes). A
    socket that cannot (a Unix socket, another system) sends at once."""
    sock = socket.socket(fileno=os.dup(fd))
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)
    except (AttributeError, OSError):
        sock.close()
        return lambda: None

    def release() -> None:
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 0)
        finally:
            sock.close()

    return release


def _wait(fd: int, *, write: bool, seconds: float = CONFIRM_SECONDS) -> None:
    ready = select.select([], [fd], [], seconds) if write else select.select([fd], [], [], seconds)
    if not any(ready):
        raise TimeoutError("PostgreSQL did not answer the COMMIT")


class Runtime:
    """The worker's event loop (one thread) and database engine, shared by its job threads."""

    def __init__(self, settings: Settings) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="jobs-loop", daemon=True)
        self.thread.start()
        self.engine = make_engine(settings.database_url)
        self.context = Context(
            settings, make_sessionmaker(self.engine), AuthLimiter(settings.redis_url)
        )

    def run(self, work: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(work, self.loop).result()

    def close(self) -> None:
        self.run(dispose(self.engine))
        self.loop.call_soon_threadsafe(self.loop.stop)


class MailNotSent(Exception):
    """SMTP refused or could not be reached: Huey retries the job later."""


# The coroutines: the same whether a consumer or the in-process app runs them.


async def send_account_mail(ctx: Context, job: MailJob, queued_at: float) -> None:
    age = time.time() - queued_at
    if age > USEFUL_FOR.get(job.template, USEFUL_DEFAULT):
        log.warning("account mail dropped: SMTP was down past its use (%s)", job.template)
        return
    if not await accounts.send_account_mail(
        settings=ctx.settings, maker=ctx.maker, limiter=ctx.limiter, job=job
    ):
        raise MailNotSent(job.template)


async def send_scheduled(ctx: Context, job: habits.Queued, now: datetime | None = None) -> str:
    """Claim the row, send its mail, mark it sent: 'sent', 'skipped' or 'gone'."""
    now = now or datetime.now(UTC)
    async with ctx.maker() as session:
        row = await habits.claim(session, job, now)
        if row is None:
            return "gone"
        msg = await habits.prepare(session, ctx.settings, row, now)
        if msg is None:
            await habits.finish(session, job, "skipped", now)
            return "skipped"

        def claim_sent() -> mail.Commit:
            """Mark the row sent, uncommitted (its lock is held): only while it is still
            this attempt's, else the server drops the mail."""
            conn = ctx.sync_engine.connect()
            postgres = conn.dialect.name == "postgresql"
            try:
                transaction = conn.begin()
                if postgres:
                    # The event loop waits for the COMMIT's answer (send_commit): not for the
                    # WAL's flush too. Only a crash of PostgreSQL itself could then forget the
                    # mark (a resend).
                    conn.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")
                done = conn.execute(habits.mark_sent_statement(job, datetime.now(UTC)))
                if done.rowcount != 1:
                    raise mail.Abort(job.key)
            except BaseException:
                conn.close()
                raise

            def commit() -> mail.Confirm | None:
                try:
                    if postgres:
                        confirm = send_commit(conn, transaction)
                    else:
                        transaction.commit()
                        confirm = None
                except BaseException:
                    conn.close()
                    raise
                finished.append(conn)  # closed once the "." is written, not before
                return confirm

            return commit

        finished: list[Any] = []
        try:
            lock = write_lock(session.get_bind()) or ctx.send_lock
            outcome = await mail.send_once(ctx.settings, msg, claim_sent, lock=lock)
        finally:
            for conn in finished:
                conn.close()
        if outcome == "failed":
            await habits.release(session, job)
            raise MailNotSent(row.kind)
    return "sent" if outcome == "sent" else "gone"


async def scan(ctx: Context, now: datetime) -> list[habits.Queued]:
    async with ctx.maker() as session:
        return await habits.scan(
            session=session, now=now, lease_seconds=ctx.settings.jobs_lease_seconds
        )


async def housekeeping(ctx: Context, now: datetime | None = None) -> dict[str, int]:
    """Purge entries past their undo window; prune old audit events, sessions and codes."""
    now = now or utcnow()
    settings = ctx.settings
    async with ctx.maker() as session:
        purged = await purge_deleted(session=session, now=now, media=storage_for(settings))
        counts = {"entries": purged}
        cutoffs = [
            # The trail's own retention (services/audit.py: 90 days, pruned at each write too),
            # here for accounts that no longer write anything.
            ("audit", AuditEvent, AuditEvent.created_at, audit.KEEP_FOR.total_seconds()),
            ("sessions", AccessToken, AccessToken.created_at, settings.session_lifetime_seconds),
            ("idle_sessions", AccessToken, AccessToken.last_used_at, settings.session_idle_seconds),
        ]
        for name, model, column, seconds in cutoffs:
            result = await session.execute(
                delete(model).where(col(column) < now - timedelta(seconds=seconds))
            )
            counts[name] = int(getattr(result, "rowcount", 0) or 0)
        result = await session.execute(delete(EmailCode).where(col(EmailCode.expires_at) < now))
        counts["codes"] = int(getattr(result, "rowcount", 0) or 0)
        await session.commit()
    if any(counts.values()):
        log.info("housekeeping: %s", counts)
    return counts


async def refresh_rates(ctx: Context) -> None:
    async with ctx.maker() as session:
        await money.refresh_due(session=session, settings=ctx.settings)


class Jobs:
    """The app's Huey instance with its tasks registered (web and worker alike)."""

    def __init__(self, settings: Settings, context: Context | None = None) -> None:
        self.settings = settings
        self.huey = make_huey(settings)
        self.context = context  # the in-process app's (JOBS_IMMEDIATE); the worker's, set below
        self.runtime: Runtime | None = None
        self.stats: dict[str, list[float]] = defaultdict(lambda: [0, 0, 0.0])
        self._started: dict[str, float] = {}
        self._lock = threading.Lock()
        self._register()

    # The worker side.

    def start_runtime(self) -> Runtime:
        with self._lock:
            if self.runtime is None:
                self.runtime = Runtime(self.settings)
                self.context = self.runtime.context
            return self.runtime

    def _run(self, work: Coroutine[Any, Any, T]) -> T:
        return self.start_runtime().run(work)

    def _ctx(self) -> Context:
        return self.start_runtime().context

    def _register(self) -> None:
        huey, settings = self.huey, self.settings
        delay = settings.jobs_retry_delay_seconds

        @huey.task(
            retries=ACCOUNT_MAIL_RETRIES,
            retry_delay=delay,
            retry_backoff=RETRY_BACKOFF,
            name="account_mail",
        )
        def account_mail(job: dict[str, Any], queued_at: float) -> None:
            # Huey takes a job off the queue when a consumer starts it, so a consumer killed
            # mid-send would lose the mail: a copy waits a lease ahead, revoked once this run
            # has sent it (or handed it to Huey's retries). At least once, never lost.
            backup = uuid.uuid4().hex
            account_mail.schedule((job, queued_at), delay=settings.jobs_lease_seconds, id=backup)
            try:
                self._run(send_account_mail(self._ctx(), MailJob(**job), queued_at))
            finally:
                huey.revoke_by_id(backup, revoke_once=True)

        @huey.task(
            retries=SCHEDULED_RETRIES,
            retry_delay=delay,
            retry_backoff=RETRY_BACKOFF,
            name="scheduled_mail",
        )
        def scheduled_mail(key: str, attempt: int, queued_at: float) -> str:
            return self._run(send_scheduled(self._ctx(), habits.Queued(key, attempt)))

        # A scan that meets a locked SQLite database (a long write elsewhere) tries again.
        @huey.task(retries=3, retry_delay=delay, retry_backoff=RETRY_BACKOFF, name="scan_at")
        def scan_at(now: str, queued_at: float) -> int:
            """The scan at an explicit time (the tests; an operator catching up)."""
            return self._scan(datetime.fromisoformat(now))

        @huey.periodic_task(crontab(minute="*"), name="scan")
        def scan_every_minute() -> int:
            # No lock: scans at once (several schedulers) only race for the unique rows.
            return self._scan(datetime.now(UTC))

        @huey.periodic_task(crontab(minute="*/5"), name="housekeeping")
        def housekeeping_every_five_minutes() -> dict[str, int]:
            return self._run(housekeeping(self._ctx()))

        @huey.periodic_task(crontab(minute="*/10"), name="rates")
        def rates_when_due() -> None:
            if not settings.refresh_rates:
                return
            last = huey.storage.peek_data("successdiary:rates-refreshed")
            if last is not EmptyData and time.time() - float(last) < settings.rates_refresh_seconds:
                return
            self._run(refresh_rates(self._ctx()))
            huey.storage.put_data("successdiary:rates-refreshed", str(time.time()).encode())

        self.account_mail = account_mail
        self.scheduled_mail = scheduled_mail
        self.scan_at = scan_at
        self.periodic = {
            "scan": scan_every_minute,
            "housekeeping": housekeeping_every_five_minutes,
            "rates": rates_when_due,
        }

    def _scan(self, now: datetime) -> int:
        queued = self._run(scan(self._ctx(), now))
        for job in queued:
            self.scheduled_mail(job.key, job.attempt, time.time())
        return len(queued)

    # The web side: queue, off the event loop (the store is Redis or a file).

    async def queue_mail(self, job: MailJob) -> None:
        if self.settings.jobs_immediate:
            assert self.context is not None
            try:
                await send_account_mail(self.context, job, time.time())
            except MailNotSent:
                log.warning("account mail not sent (immediate mode: no retry)")
            return
        await to_thread.run_sync(self.account_mail, asdict(job), time.time())

    async def queue_scheduled(self, job: habits.Queued) -> None:
        if self.settings.jobs_immediate:
            assert self.context is not None
            try:
                await send_scheduled(self.context, job)
            except MailNotSent:
                log.warning("scheduled mail not sent (immediate mode: no retry)")
            return
        await to_thread.run_sync(self.scheduled_mail, job.key, job.attempt, time.time())

    # What /healthz and /metrics say.

    def queue_state(self) -> dict[str, Any]:
        """Waiting jobs and the age of the oldest (seconds); blocking (a thread's work)."""
        storage = self.huey.storage
        waiting = self.huey.pending_count()
        oldest = None
        if waiting:
            if isinstance(self.huey, RedisHuey):
                raw = storage.conn.lindex(storage.queue_key, -1)
                items = [raw] if raw is not None else []
            else:
                items = storage.enqueued_items(limit=1)
            for raw in items:
                task = self.huey.deserialize_task(raw)
                queued_at = (task.kwargs or {}).get("queued_at") or (
                    task.args[-1] if task.args and isinstance(task.args[-1], float) else None
                )
                if queued_at:
                    oldest = round(max(0.0, time.time() - float(queued_at)), 1)
        return {
            "status": "ok",
            "store": store(self.settings)[0],
            "waiting": waiting,
            "scheduled": self.huey.scheduled_count(),
            "oldest_waiting_seconds": oldest,
        }

    def worker_stats(self) -> dict[str, list[float]]:
        raw = self.huey.storage.peek_data(METRICS_KEY)
        return {} if raw is EmptyData else dict(json.loads(raw))

    def watch(self) -> None:
        """In the worker: count runs, failures and run time per task, flushed to the store."""

        @self.huey.signal(SIGNAL_EXECUTING)
        def executing(signal: str, task: Any) -> None:
            self._started[task.id] = time.perf_counter()

        @self.huey.signal(SIGNAL_COMPLETE, SIGNAL_ERROR, SIGNAL_RETRYING)
        def done(signal: str, task: Any, *args: Any) -> None:
            started = self._started.pop(task.id, None)
            if signal == SIGNAL_RETRYING:
                return
            entry = self.stats[task.name]
            entry[0] += 1
            if signal == SIGNAL_ERROR:
                entry[1] += 1
            if started is not None:
                entry[2] += time.perf_counter() - started

        def flush() -> None:
            while True:
                time.sleep(METRICS_FLUSH_SECONDS)
                self.flush_stats()

        threading.Thread(target=flush, name="jobs-metrics", daemon=True).start()

    @contextlib.contextmanager
    def _store_lock(self, stale_after: float = 30.0) -> Iterator[None]:
        """One worker at a time adds its counts (Huey's own locks take no TTL on SQLite, and
        a killed worker's lock would stay): a lock older than `stale_after` is broken."""
        storage, key = self.huey.storage, f"{METRICS_KEY}:lock"
        deadline = time.monotonic() + 10
        while not storage.put_if_empty(key, str(time.time()).encode()):
            held = storage.peek_data(key)
            if held is not EmptyData and time.time() - float(held) > stale_after:
                storage.pop_data(key)
                continue
            if time.monotonic() > deadline:
                raise TimeoutError("the metrics lock is busy")
            time.sleep(0.05)
        try:
            yield
        finally:
            storage.pop_data(key)

    def flush_stats(self) -> None:
        if not self.stats:
            return
        deltas, self.stats = self.stats, defaultdict(lambda: [0, 0, 0.0])
        try:
            with self._store_lock():
                totals = self.worker_stats()
                for name, (runs, failures, seconds) in deltas.items():
                    total = totals.setdefault(name, [0, 0, 0.0])
                    total[0] += runs
                    total[1] += failures
                    total[2] += seconds
                self.huey.storage.put_data(METRICS_KEY, json.dumps(totals).encode())
        except Exception:  # the counts come back next time
            log.warning("job metrics could not be stored", exc_info=True)
            for name, values in deltas.items():
                for i, value in enumerate(values):
                    self.stats[name][i] += value


def run_worker(settings: Settings, workers: int | None = None) -> None:
    """`successdiary worker`: the consumer and the scheduler, until SIGINT or SIGTERM."""
    jobs = Jobs(settings)
    jobs.start_runtime()
    jobs.watch()
    kind, _ = store(settings)
    log.info(
        "worker started: %s queue, %d threads (pid %d on %s)",
        kind,
        workers or settings.jobs_workers,
        os.getpid(),
        socket.gethostname(),
    )
    consumer = jobs.huey.create_consumer(
        workers=workers or settings.jobs_workers,
        worker_type="thread",
        periodic=True,
        max_delay=1.0,
        check_worker_health=True,
    )
    try:
        consumer.run()
    finally:
        jobs.flush_stats()
        if jobs.runtime is not None:
            jobs.runtime.close()
