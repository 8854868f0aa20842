"""The real job consumer (`python -m app worker`) as a subprocess, for the queue's tests.

It reads the same database as the in-process app and a store of its own: on SQLite a jobs
file in a fresh folder (JOBS_URL), on PostgreSQL Redis (REDIS_URL_TEST, flushed first) or,
without it, Huey's tables in PostgreSQL.
"""

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from app.config import ROOT, Settings
from app.jobs import Jobs
from tests.conftest import make_settings

SECRET = "test-secret-key-that-is-long-enough-0123456789"
PUBLIC_URL = "https://diary.example.test"


def queue_settings(db_url: str, smtp_port: int, folder: Path, **overrides: Any) -> Settings:
    """What the worker runs with; a Jobs(...) of these queues to the worker's store."""
    values: dict[str, Any] = {
        "jobs_immediate": False,
        "base_url": PUBLIC_URL,
        "jobs_retry_delay_seconds": 0.5,
        "jobs_lease_seconds": 2.0,
        "dev_mail_dir": folder / "dev-mail",
    }
    if db_url.startswith("sqlite"):
        values["jobs_url"] = str(folder / "jobs.sqlite3")
    elif os.environ.get("REDIS_URL_TEST"):
        values["redis_url"] = os.environ["REDIS_URL_TEST"]
    return make_settings(db_url, smtp_port, **{**values, **overrides})


def env_for(settings: Settings) -> dict[str, str]:
    env = {
        **os.environ,
        "ENVIRONMENT": "development",
        "DATABASE_URL": settings.database_url,
        "SECRET_KEY": settings.secret_key,
        "BASE_URL": settings.base_url,
        "SMTP_HOST": settings.smtp_host,
        "SMTP_PORT": str(settings.smtp_port),
        "SMTP_TIMEOUT": "3",
        "JOBS_RETRY_DELAY_SECONDS": str(settings.jobs_retry_delay_seconds),
        "JOBS_LEASE_SECONDS": str(settings.jobs_lease_seconds),
        "DEV_MAIL_DIR": str(settings.dev_mail_dir),
        "RATES_REFRESH": "false",
        "LOG_FORMAT": "text",
    }
    for name, value in (("JOBS_URL", settings.jobs_url), ("REDIS_URL", settings.redis_url)):
        if value:
            env[name] = value
        else:
            env.pop(name, None)
    return env


class Worker:
    def __init__(self, settings: Settings, log: Path, threads: int = 4) -> None:
        self.settings = settings
        self.log = log
        self.threads = threads
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "app", "worker", "--workers", str(self.threads)],
                cwd=ROOT,
                env=env_for(self.settings),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.starts += 1

    def kill(self) -> None:
        """SIGKILL: no cleanup, whatever the consumer was doing."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # Huey's graceful stop
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def clear_store(jobs: Jobs) -> None:
    jobs.huey.flush()


async def wait_for(
    check: Callable[[], Any], within: float = 30.0, what: str = "", worker: Worker | None = None
) -> Any:
    """Poll until `check()` (sync or async) is truthy: an event, never a schedule."""
    deadline = time.monotonic() + within
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            tail = worker.output() if worker is not None else ""
            raise AssertionError(f"timed out waiting for {what or check}\n{tail}")
        await asyncio.sleep(0.1)
