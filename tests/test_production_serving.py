"""Serving in production: the README's command serves, several workers share their rate
limits through Redis, HTML goes out compressed and static assets are cached for a year."""

import asyncio
import contextlib
import gc
import gzip
import os
import re
import shlex
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from uvicorn.workers import UvicornWorker

from app.ratelimit import LOGIN_FAILURES_PER_ACCOUNT, AuthLimiter
from app.static import MANIFEST
from app.worker import YOUNG_GENERATION, Worker
from tests.conftest import Mailbox
from tests.live_server import PASSWORD, ROOT, LiveServer, free_port, migrate, server_env
from tests.security.conftest import redis_url  # noqa: F401 (a fixture)

WRONG = "wrong password 123"
SAME_ORIGIN = {"Sec-Fetch-Site": "same-origin", "Accept-Encoding": "gzip"}


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'live.sqlite3'}"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, mailbox: Mailbox) -> Iterator[LiveServer]:
    """Two workers on a fresh SQLite file, shared by this module's tests."""
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('live') / 'live.sqlite3'}"
    with LiveServer(database_url=url, smtp_port=mailbox.port, workers=2) as live:
        live.create_user("alice@example.com")
        yield live


@contextlib.contextmanager
def signed_in(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as client:
        response = client.post(
            "/api/v1/auth/cookie/login",
            data={"username": "alice@example.com", "password": PASSWORD},
        )
        assert response.status_code == 204, response.text
        yield client


def test_a_large_html_page_is_sent_gzipped(server):
    bearer = {"Authorization": f"Bearer {server.bearer_token('alice@example.com')}"}
    for i in range(20):
        data = {"title": f"Win {i}", "body": "Ran 5k " * 20}
        assert httpx.post(f"{server.url}/api/v1/entries", json=data, headers=bearer).is_success
    with signed_in(server) as client:
        response = client.get("/entries", headers=SAME_ORIGIN)
    assert response.status_code == 200
    assert response.headers["content-encoding"] == "gzip"
    assert int(response.headers["content-length"]) < len(response.content) / 3
    assert "Win 19" in response.text


async def test_concurrent_quick_adds_all_land_without_database_is_locked(server):
    """SQLite, two workers, 32 forms at once: every write acknowledged is stored."""
    with signed_in(server) as sync_client:
        cookies = dict(sync_client.cookies)
        sync_client.get("/entries", headers=SAME_ORIGIN)
        cookies.update(sync_client.cookies)
    limits = httpx.Limits(max_connections=32)
    headers = {"Origin": server.url}
    async with httpx.AsyncClient(
        base_url=server.url, cookies=cookies, limits=limits, timeout=60
    ) as client:
        form = {"csrftoken": cookies["csrftoken"], "tags": "parallel"}
        posts = [
            client.post("/entries", data={**form, "title": f"Parallel {i}"}, headers=headers)
            for i in range(96)
        ]
        statuses = [r.status_code for r in await asyncio.gather(*posts)]
        assert statuses == [303] * 96
        listed = (
            await client.get("/api/v1/entries", params={"tag": "parallel", "limit": 100})
        ).json()
    assert len(listed["items"]) == 96
    assert "database is locked" not in server.log.read_text(errors="replace")


def test_a_cross_site_request_with_cookies_is_not_compressed(server):
    """BREACH: pages holding a CSRF token are not compressed for another site's requests."""
    with signed_in(server) as client:
        response = client.get(
            "/entries", headers={"Sec-Fetch-Site": "cross-site", "Accept-Encoding": "gzip"}
        )
    assert response.status_code == 200
    assert "content-encoding" not in response.headers
    assert 'name="csrftoken"' in response.text


def test_a_hashed_static_asset_is_cached_for_a_year(server):
    page = httpx.get(f"{server.url}/login", timeout=10).text
    css = re.search(r'href="(/static/css/app\.[0-9a-f]{12}\.css)"', page)
    assert css, "the page links the stylesheet by its hashed name"
    assert css.group(1) == f"/static/{MANIFEST['css/app.css']}"
    response = httpx.get(f"{server.url}{css.group(1)}", headers={"Accept-Encoding": "gzip"})
    assert response.status_code == 200
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert response.headers["content-encoding"] == "gzip"
    assert response.content == (ROOT / "static/css/app.css").read_bytes()


def test_an_unhashed_or_stale_static_name_is_cached_briefly_or_not_found(server):
    plain = httpx.get(f"{server.url}/static/css/app.css", timeout=10)
    assert plain.status_code == 200
    assert plain.headers["cache-control"] == "public, max-age=300"
    stale = httpx.get(f"{server.url}/static/css/app.000000000000.css", timeout=10)
    assert stale.status_code == 404


async def test_failed_logins_on_either_worker_add_up_to_the_lock_out(
    sqlite_url: str,
    mailbox: Mailbox,
    redis_url: str,  # noqa: F811
) -> None:
    """Two workers, counters in Redis: the workers are even killed and replaced half-way,
    so a count kept in a worker's memory would start again from zero."""
    limit = LOGIN_FAILURES_PER_ACCOUNT.amount
    await AuthLimiter(redis_url).reset()
    live = LiveServer(
        database_url=sqlite_url, smtp_port=mailbox.port, workers=2, REDIS_URL=redis_url
    )
    with live:
        live.create_user("alice@example.com")

        def attempt(password: str = WRONG) -> int:
            with httpx.Client(base_url=live.url, timeout=10) as fresh:  # a new connection
                return fresh.post(
                    "/api/v1/auth/bearer/login",
                    data={"username": "alice@example.com", "password": password},
                ).status_code

        first = [attempt() for _ in range(limit // 2)]
        replace_workers(live)
        rest = [attempt() for _ in range(limit - len(first))]
        assert set(first + rest) == {400}
        assert attempt() == 429
        assert attempt(PASSWORD) == 429, "locked, whichever worker answers"


def replace_workers(live: LiveServer) -> None:
    """SIGKILL every worker; gunicorn's master starts fresh ones (empty memory)."""
    old = set(live._worker_pids())
    assert len(old) == 2
    for pid in old:
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        now = set(live._worker_pids())
        if len(now) == 2 and not now & old:
            live.wait_ready()
            return
        time.sleep(0.2)
    raise TimeoutError("gunicorn did not replace its workers")


def readme_command() -> list[str]:
    """The gunicorn command line from the README's Production paragraph."""
    text = (ROOT / "README.md").read_text()
    match = re.search(r"^(\.venv/bin/gunicorn .+)$", text, re.MULTILINE)
    assert match, "the README gives the production command on a line of its own"
    return shlex.split(match.group(1))


def test_the_production_command_from_the_readme_serves(
    sqlite_url: str,
    mailbox: Mailbox,
    redis_url: str,  # noqa: F811 (several workers in production share their limits)
):
    command = readme_command()
    assert "-w" in command and int(command[command.index("-w") + 1]) >= 2, "several workers"
    port = free_port()
    command[command.index("-b") + 1] = f"127.0.0.1:{port}"
    command[command.index("-w") + 1] = "2"  # the README's worker count, fitted to a test
    env = server_env(
        sqlite_url,
        port,
        mailbox.port,
        ENVIRONMENT="production",
        COOKIE_SECURE="true",
        BASE_URL="https://diary.example",
        REDIS_URL=redis_url,
    )
    migrate(sqlite_url, env)
    command[0] = str(ROOT / command[0])
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        page = wait_for(f"http://127.0.0.1:{port}/login", process)
        assert page.status_code == 200 and "Sign in" in page.text
        assert page.headers["strict-transport-security"].startswith("max-age=31536000")
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=15)


def wait_for(url: str, process: subprocess.Popen[bytes], timeout: float = 30) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "the production command exited"
        try:
            return httpx.get(url, timeout=2, headers=SAME_ORIGIN)
        except httpx.HTTPError:
            time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer in {timeout} s")


def test_compression_is_readable_by_any_gzip_client(server):
    with signed_in(server) as client:
        raw = client.build_request("GET", "/entries", headers=SAME_ORIGIN)
        response = client.send(raw, stream=True)
        body = b"".join(response.iter_raw())
        response.close()
    assert gzip.decompress(body).decode().startswith("<!doctype html>")


def test_the_worker_freezes_the_loaded_app_for_the_garbage_collector(monkeypatch):
    """What the worker loaded lives as long as it does: frozen, so a full collection scans only
    what requests made, and the young generation is collected less often (app/worker.py)."""
    monkeypatch.setattr(UvicornWorker, "run", lambda self: None)  # no server: only the set-up
    threshold = gc.get_threshold()
    try:
        Worker.run(object.__new__(Worker))
        assert gc.get_freeze_count() > 10_000
        assert gc.get_threshold() == (YOUNG_GENERATION, *threshold[1:])
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
