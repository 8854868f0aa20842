"""The job queue under a burst: `make bench-jobs` (a measurement, not a test).

N users (BENCH_JOBS_USERS, default 10,000) have a reminder due in the same minute. One scan
queues a job per user; ONE consumer (`python -m app worker`, JOBS_WORKERS threads) sends them
to a local SMTP server (aiosmtpd, accepting at once). Prints jobs per second and the delay
from the minute they were due to each mail's arrival (p50, p95, max), on a fresh SQLite
database with a jobs file (BENCH_JOBS_REDIS=redis://... for Redis as the store instead).
"""

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiosmtpd.controller import Controller
from alembic import command
from sqlalchemy import func, insert, select

from app.auth import password_helper
from app.config import ROOT
from app.db import dispose, make_engine, make_sessionmaker
from app.jobs import Jobs
from app.models import SentMail, User
from tests.conftest import alembic_config, free_port, make_settings
from tests.worker import env_for


class Arrivals:
    def __init__(self) -> None:
        self.times: list[float] = []

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        self.times.append(time.time())
        return "250 OK"


async def main() -> None:
    users = int(os.environ.get("BENCH_JOBS_USERS", "10000"))
    threads = int(os.environ.get("JOBS_WORKERS", "4"))
    folder = Path(tempfile.mkdtemp(prefix="sd-bench-jobs-"))
    db_url = f"sqlite:///{folder / 'bench.sqlite3'}"
    port = free_port()
    arrivals = Arrivals()
    smtp = Controller(arrivals, hostname="127.0.0.1", port=port)
    smtp.start()
    redis = os.environ.get("BENCH_JOBS_REDIS")
    settings = make_settings(
        db_url,
        port,
        jobs_immediate=False,
        jobs_url=None if redis else str(folder / "jobs.sqlite3"),
        redis_url=redis,
        environment="production",
        cookie_secure=True,
        base_url="https://diary.example.test",
        jobs_lease_seconds=600.0,
    )
    await asyncio.to_thread(command.upgrade, alembic_config(db_url), "head")
    engine = make_engine(db_url)
    maker = make_sessionmaker(engine)
    due = datetime.now(UTC).replace(second=0, microsecond=0)
    hashed = password_helper.hash("bench password 1234")
    async with maker() as session:
        rows = [
            {"id": __import__("uuid").uuid4(), "email": f"u{i:05}@example.com",
             "hashed_password": hashed, "is_verified": True, "is_active": True,
             "is_superuser": False, "reminder_time": due.strftime("%H:%M")}
            for i in range(users)
        ]  # fmt: skip
        await session.execute(insert(User), rows)
        await session.commit()
    jobs = Jobs(settings)
    jobs.huey.flush()
    log = (folder / "worker.log").open("wb")
    worker = subprocess.Popen(  # noqa: ASYNC220 (started once, before the measurement)
        [sys.executable, "-m", "app", "worker", "--workers", str(threads)],
        cwd=ROOT,
        env={**env_for(settings), "ENVIRONMENT": "production", "LOG_FORMAT": "json"},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        await asyncio.sleep(2)  # the consumer is up before the burst
        started = time.time()
        jobs.scan_at((due + timedelta(seconds=1)).isoformat(), started)
        while len(arrivals.times) < users:
            if worker.poll() is not None:
                raise SystemExit(f"the worker stopped; see {folder / 'worker.log'}")
            if time.time() - started > 1800:
                break
            await asyncio.sleep(0.2)
        finished = time.time()
    finally:
        worker.terminate()
        worker.wait(30)
        smtp.stop()
    async with maker() as session:
        sent = await session.scalar(
            select(func.count()).select_from(SentMail).where(SentMail.status == "sent")  # type: ignore[arg-type]
        )
    await dispose(engine)
    delays = sorted(t - due.timestamp() for t in arrivals.times)
    first = min(arrivals.times) if arrivals.times else finished
    sending = max(finished - first, 1e-9)
    print(f"users due in one minute: {users}; consumer threads: {threads}; store: "
          f"{'redis' if redis else 'sqlite file'}; database: SQLite")  # fmt: skip
    print(f"mails received: {len(arrivals.times)}; rows marked sent: {sent}")
    print(f"scan + queueing: {first - started:.1f} s until the first mail")
    print(f"jobs per second (one consumer): {len(arrivals.times) / sending:.0f}")
    if delays:
        p50 = statistics.median(delays)
        p95 = delays[int(len(delays) * 0.95) - 1]
        print(f"due -> sent delay: p50 {p50:.1f} s, p95 {p95:.1f} s, max {delays[-1]:.1f} s "
              f"(from the start of the due minute; the scan ran {started - due.timestamp():.1f} s "
              "into it)")  # fmt: skip


if __name__ == "__main__":
    asyncio.run(main())
