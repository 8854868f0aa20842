"""A real server in a subprocess, started the production way (gunicorn + uvicorn workers).

For the tests (and benchmarks) that need what an in-process ASGI client cannot give: real
sockets, several workers, signals (SIGKILL mid-write) and a database that goes away.

    with LiveServer(database_url=url, smtp_port=mailbox.port) as server:
        token = server.bearer_token("alice@example.com")
        httpx.get(f"{server.url}/api/v1/entries", headers=...)
"""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

import httpx
import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
PASSWORD = "correct horse battery staple"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_env(database_url: str, port: int, smtp_port: int, **extra: str) -> dict[str, str]:
    """The environment an operator would set, pointed at this test's database and mail."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEST_", "REDIS_URL"))}
    env.update(
        ENVIRONMENT="development",
        DATABASE_URL=database_url,
        SECRET_KEY="live-server-secret-key-0123456789-abcdefghij",
        BASE_URL=f"http://127.0.0.1:{port}",
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=str(smtp_port),
        COOKIE_SECURE="false",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def migrate(database_url: str, env: dict[str, str] | None = None) -> None:
    """`alembic upgrade head`, exactly as the README tells an operator."""
    subprocess.run(
        [PYTHON, "-m", "alembic", "upgrade", "head"],
        cwd=ROOT,
        env={**(env or os.environ), "DATABASE_URL": database_url},
        check=True,
        capture_output=True,
    )


def create_user(env: dict[str, str], email: str, password: str = PASSWORD) -> None:
    """A verified account through the operator command (`python -m app create-user`)."""
    subprocess.run(
        [PYTHON, "-m", "app", "create-user", email, "--password-stdin"],
        cwd=ROOT,
        env=env,
        input=f"{password}\n",
        text=True,
        check=True,
        capture_output=True,
    )


class LiveServer:
    """gunicorn with `workers` uvicorn workers on a free port; stops (or is killed) on exit."""

    def __init__(
        self,
        *,
        database_url: str,
        smtp_port: int,
        workers: int = 1,
        port: int | None = None,
        migrate_first: bool = True,
        app: str = "app.main:create_app()",
        **extra_env: str,
    ) -> None:
        self.app = app  # bench/ serves its bare "hello" app with the very same command
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workers = workers
        self.env = server_env(database_url, self.port, smtp_port, **extra_env)
        self.log = ROOT / "test-results" / f"live-server-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.jobs: subprocess.Popen[bytes] | None = None  # the job worker, as an operator runs
        if migrate_first:
            migrate(database_url, self.env)

    def start(self, timeout: float = 30.0) -> "LiveServer":
        self.log.parent.mkdir(exist_ok=True)
        command = [
            PYTHON, "-m", "gunicorn", self.app,
            "-k", "app.worker.Worker",
            "-w", str(self.workers),
            "-b", f"127.0.0.1:{self.port}",
            "--graceful-timeout", "5",
            "--keep-alive", "5",  # as the README's production command
        ]  # fmt: skip
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        if self.app == "app.main:create_app()" and self.jobs is None:
            with self.log.with_name(f"live-worker-{self.port}.log").open("ab") as jobs_log:
                self.jobs = subprocess.Popen(
                    [PYTHON, "-m", "app", "worker", "--workers", "2"],
                    cwd=ROOT,
                    env=self.env,
                    stdout=jobs_log,
                    stderr=subprocess.STDOUT,
                )
        try:
            self.wait_ready(timeout)
        except BaseException:  # __exit__ never runs when __enter__ fails: leave no server behind
            self.kill()
            raise
        return self

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"the server exited at start:\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"the server did not answer in {timeout} s:\n{self.log_tail()}")

    def kill(self) -> None:
        """SIGKILL the whole process group, as a power cut would."""
        if self.process is not None and self.process.poll() is None:
            workers = self._worker_pids()  # before the master dies and they are reparented
            self.process.kill()
            for pid in workers:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            self.process.wait()
        self.process = None
        self._stop_jobs()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
        self.process = None
        self._stop_jobs()

    def _stop_jobs(self) -> None:
        if self.jobs is not None and self.jobs.poll() is None:
            self.jobs.send_signal(signal.SIGINT)  # Huey's graceful stop
            try:
                self.jobs.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.jobs.kill()
                self.jobs.wait()
        self.jobs = None

    def _worker_pids(self) -> list[int]:
        assert self.process is not None
        result = subprocess.run(
            ["pgrep", "-P", str(self.process.pid)], capture_output=True, text=True, check=False
        )
        return [int(pid) for pid in result.stdout.split()]

    def log_tail(self, lines: int = 40) -> str:
        if not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def create_user(self, email: str, password: str = PASSWORD) -> None:
        create_user(self.env, email, password)

    def bearer_token(self, email: str, password: str = PASSWORD) -> str:
        response = httpx.post(
            f"{self.url}/api/v1/auth/bearer/login",
            data={"username": email, "password": password},
            timeout=10,
        )
        response.raise_for_status()
        return str(response.json()["access_token"])

    def __enter__(self) -> "LiveServer":
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"LiveServer({self.url}, workers={self.workers})"


@contextlib.contextmanager
def fresh_database(test_url: str, folder: Path) -> Iterator[str]:
    """An empty database on the test's backend, for a server that writes behind the tests' back.

    SQLite: a new file in `folder`. PostgreSQL: a new database next to TEST_DATABASE_URL's
    (dropped afterwards), so what the server leaves never meets the in-process tests.
    """
    if test_url.startswith("sqlite"):
        yield f"sqlite+aiosqlite:///{folder / 'live.sqlite3'}"
        return
    url = make_url(test_url)
    name = f"{url.database}_live_{os.getpid()}_{time.monotonic_ns()}"
    admin = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as db:
        db.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as db:
            db.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
