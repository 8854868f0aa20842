"""Shared fixtures: one app per database backend, a real SMTP server, alice and bob.

Every test runs on SQLite; with TEST_DATABASE_URL set it runs on PostgreSQL too. Tables
are emptied after each test, rate limits and background mail are reset with them.
"""

import asyncio
import contextlib
import os
import re
import socket
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from alembic import command
from alembic.config import Config
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import ROOT, Settings
from app.main import create_app
from app.models import User, metadata
from tests.factories import bearer_token, make_user, sign_in

# Chromium and a live server, for any test module; photo storages (a folder, moto S3).
pytest_plugins = ["tests.browser.plugin", "tests.photos_support"]

# The suite never calls out: no exchange-rate refresh in any app or server it starts (tests of
# the rates point RATES_URL at a local server and switch it on themselves).
os.environ["RATES_REFRESH"] = "false"

BACKENDS = ["sqlite"] + (["postgresql"] if os.environ.get("TEST_DATABASE_URL") else [])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Mailbox:
    """Messages caught by the test SMTP server."""

    port: int = 0
    messages: list[EmailMessage] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = message_from_bytes(envelope.content, policy=policy.default)
        self.messages.append(msg)  # type: ignore[arg-type]
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if m["To"] == address]

    def last_to(self, address: str) -> EmailMessage:
        found = self.to(address)
        assert found, f"no mail to {address}; mail went to {[m['To'] for m in self.messages]}"
        return found[-1]

    def code_for(self, address: str) -> str:
        text_part = self.last_to(address).get_body(("plain",))
        assert text_part is not None
        match = re.search(r"\b(\d{6})\b", text_part.get_content())
        assert match, "no 6-digit code in the mail"
        return match.group(1)

    def link_for(self, address: str, path: str) -> str:
        """The path of the newest link to `path` mailed to `address` (a notice mailed before
        may arrive after it: work after an answer has no order across requests)."""
        self.last_to(address)  # says where the mail went when none came to this address
        link = re.compile(rf"https?://\S+({re.escape(path)}\S*)")
        for msg in reversed(self.to(address)):
            body = msg.get_body(("plain",))
            match = link.search(body.get_content()) if body is not None else None
            if match:
                return match.group(1)
        raise AssertionError(f"no {path} link in the mail")


@pytest.fixture(scope="session")
def mailbox() -> Iterator[Mailbox]:
    box = Mailbox(port=free_port())
    controller = Controller(box, hostname="127.0.0.1", port=box.port)
    controller.start()
    yield box
    controller.stop()


@pytest.fixture(scope="session", params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    if request.param == "postgresql":
        return os.environ["TEST_DATABASE_URL"]
    return f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('db') / 'test.sqlite3'}"


def alembic_config(url: str) -> Config:
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.attributes["url"] = url
    cfg.attributes["configure_logger"] = False
    return cfg


def make_settings(db_url: str, smtp_port: int, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "environment": "development",
        "database_url": db_url,
        "secret_key": "test-secret-key-that-is-long-enough-0123456789",
        "base_url": "http://testserver",
        "smtp_port": smtp_port,
        "smtp_timeout": 3.0,
        "cookie_secure": False,
        "redis_url": None,
        "rates_refresh": False,
        # The in-process app runs each job at once in its own loop (app/jobs.py), so `settle`
        # sees its mail; tests/test_jobs.py drives the real consumer.
        "jobs_immediate": True,
        # Development keeps every mail it sends; the suite's go to a folder of its own.
        "dev_mail_dir": Path(tempfile.gettempdir()) / f"successdiary-test-mail-{os.getpid()}",
        "media_dir": Path(tempfile.gettempdir()) / f"successdiary-test-media-{os.getpid()}",
        **overrides,
    }
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture(scope="session")
def settings(db_url: str, mailbox: Mailbox) -> Settings:
    return make_settings(db_url, mailbox.port)


@pytest.fixture(scope="session")
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    engine: AsyncEngine = application.state.engine
    if not settings.is_sqlite:  # a database left by an earlier run starts empty again
        async with engine.begin() as conn:
            await conn.exec_driver_sql("DROP SCHEMA public CASCADE")
            await conn.exec_driver_sql("CREATE SCHEMA public")
    # The schema comes from the migrations, as in production (search triggers included).
    await asyncio.to_thread(command.upgrade, alembic_config(settings.database_url), "head")
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture(autouse=True)
async def _clean(request: pytest.FixtureRequest, mailbox: Mailbox) -> AsyncIterator[None]:
    """Empty every table, the rate limits and the mailbox after each test that used the app."""
    mailbox.messages.clear()
    yield
    if "app" not in request.fixturenames:
        return
    application: FastAPI = request.getfixturevalue("app")
    await application.state.background.drain()
    await application.state.limiter.reset()
    async with application.state.sessionmaker() as session:
        for table in reversed(metadata.sorted_tables):
            await session.execute(table.delete())
        await session.commit()
    mailbox.messages.clear()


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with _client(app) as c:
        yield c


@pytest.fixture
async def session(app: FastAPI) -> AsyncIterator[Any]:
    async with app.state.sessionmaker() as s:
        yield s


@pytest.fixture
async def alice(session: Any) -> User:
    return await make_user(session, "alice@example.com")


@pytest.fixture
async def bob(session: Any) -> User:
    return await make_user(session, "bob@example.com")


def _client(app: FastAPI) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 51000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


@pytest.fixture
async def alice_client(client: httpx.AsyncClient, alice: User) -> httpx.AsyncClient:
    """The `client` signed in as alice (the owner in every access test)."""
    await sign_in(client, "alice@example.com")
    return client


@pytest.fixture
async def bob_client(app: FastAPI, bob: User) -> AsyncIterator[httpx.AsyncClient]:
    """Another browser, signed in as bob (another user: alice's ids must be 404 to him)."""
    async with _client(app) as c:
        await sign_in(c, "bob@example.com")
        yield c


@pytest.fixture
async def anon(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A browser that is not signed in."""
    async with _client(app) as c:
        yield c


@pytest.fixture
async def as_alice(client: httpx.AsyncClient, alice: User) -> httpx.AsyncClient:
    """The `client` calling the API as alice, with her bearer token."""
    client.headers["Authorization"] = f"Bearer {await bearer_token(client, 'alice@example.com')}"
    return client


@pytest.fixture
async def as_bob(app: FastAPI, bob: User) -> AsyncIterator[httpx.AsyncClient]:
    """Another client calling the API as bob."""
    async with _client(app) as c:
        c.headers["Authorization"] = f"Bearer {await bearer_token(c, 'bob@example.com')}"
        yield c


@contextlib.contextmanager
def mail_down(app: FastAPI) -> Iterator[None]:
    """The mail server does not answer while inside."""
    port = app.state.settings.smtp_port
    app.state.settings.smtp_port = 9  # nothing listens on the discard port
    try:
        yield
    finally:
        app.state.settings.smtp_port = port


async def settle(app: FastAPI) -> None:
    """Let the answer's background work (account changes and mail) finish."""
    await app.state.background.drain()
    await asyncio.sleep(0)
