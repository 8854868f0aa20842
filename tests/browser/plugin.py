"""A real server (uvicorn, migrated SQLite database) and Debian's Chromium driven by Playwright.

A plugin (tests/conftest.py loads it) so any test module, tests/security's included, shares the
one browser and the one server of the session. Tests that use Chromium are marked `browser`;
they skip when Chromium is missing, unless REQUIRE_BROWSER=1 (CI) makes that a failure.
"""

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.config import ROOT
from tests.conftest import Mailbox, free_port
from tests.factories import PASSWORD

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SHOTS = ROOT / "test-results"
HAVE_CHROMIUM = CHROMIUM.exists()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/browser/" in str(item.fspath) or "chromium" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
async def chromium() -> AsyncIterator[object]:
    if not HAVE_CHROMIUM:
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail(
                "REQUIRE_BROWSER=1 but /usr/bin/chromium is missing (apt-get install -y chromium)"
            )
        pytest.skip("Chromium is not installed (apt-get install -y chromium)")
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield browser
        await browser.close()


@pytest.fixture(scope="session")
def live_server(mailbox: Mailbox, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """uvicorn as a user runs it, on a database that `alembic upgrade head` created."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    folder = tmp_path_factory.mktemp("live")
    db = folder / "live.sqlite3"
    env = {
        **os.environ,
        "ENVIRONMENT": "development",
        "DATABASE_URL": f"sqlite+aiosqlite:///{db}",
        "BASE_URL": base,
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(mailbox.port),
        "SECRET_KEY": "browser-test-secret-key-0123456789-abcdefghij",
    }
    env.pop("REDIS_URL", None)
    with uvicorn_server(env, folder, port) as served:
        yield served


@contextlib.contextmanager
def uvicorn_server(
    env: dict[str, str], folder: Path, port: int, factory: str = "app.main:create_app"
) -> Iterator[str]:
    """uvicorn on 127.0.0.1:port, its database migrated first, its log in folder/server.log
    (a file, not a pipe nobody reads: a full pipe, 64 kB of log lines, stops the server),
    and a job worker beside it (mail goes out through it) logging to folder/worker.log."""
    bin_dir = Path(sys.executable).parent
    subprocess.run(
        [str(bin_dir / "alembic"), "upgrade", "head"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    base = f"http://127.0.0.1:{port}"
    command = [str(bin_dir / "uvicorn"), "--factory", factory, "--host", "127.0.0.1"]
    with (folder / "server.log").open("wb") as log:
        server = subprocess.Popen(
            [*command, "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    with (folder / "worker.log").open("wb") as log:
        worker = subprocess.Popen(
            # The app's own clock (tests/browser/frozen_clock.py moves it) rules the worker too.
            [
                sys.executable,
                "-m",
                "tests.browser.frozen_clock" if "FROZEN_CLOCK_AT" in env else "app",
                "worker",
                "--workers",
                "2",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until_healthy(base)
        yield base
    finally:
        server.terminate()
        worker.send_signal(signal.SIGINT)  # Huey's graceful stop
        server.wait(timeout=10)
        try:
            worker.wait(timeout=10)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


def wait_until_healthy(base: str) -> None:
    """Wait (10 s at most) for a server just started to answer /healthz."""
    for _ in range(100):
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError("the server did not start")


async def sign_in(page: Any, base: str, email: str, password: str = PASSWORD) -> None:
    """Sign in through the page, as a person does, and land on the home page."""
    await page.goto(f"{base}/login")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(f"{base}/")
