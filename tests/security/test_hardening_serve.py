"""SECURITY.md rows 34 and 40 (the banner): slow and huge requests against the served
configuration (gunicorn with app.worker.Worker, and uvicorn as scripts/run.sh starts it), and
print views and exports bounded in memory and in number per user."""

import asyncio
import contextlib
import os
import re
import shlex
import signal
import socket
import subprocess
import threading
import time
import tracemalloc
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.models import Entry, User
from app.services import export
from tests.conftest import Mailbox
from tests.factories import bearer_token, make_user
from tests.live_server import ROOT, LiveServer, free_port, migrate, server_env

HEADER_TIMEOUT = 2.0  # the servers below run with HEADER_TIMEOUT_SECONDS=2 (default 30)
LIMIT = 65_536  # MAX_HEADER_BYTES' default


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, mailbox: Mailbox) -> Iterator[LiveServer]:
    """gunicorn with our worker, one worker (so its memory can be read), a 2 s head timeout."""
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('serve') / 'live.sqlite3'}"
    live = LiveServer(
        database_url=url,
        smtp_port=mailbox.port,
        workers=1,
        HEADER_TIMEOUT_SECONDS=str(HEADER_TIMEOUT),
    )
    with live:
        yield live


def head(size: int, path: str = "/healthz") -> bytes:
    """A GET whose head (request line, headers and the blank line) is exactly `size` bytes."""
    start = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: ".encode()
    end = b"\r\n\r\n"
    return start + b"a" * (size - len(start) - len(end)) + end


def connect(port: int, timeout: float = 10) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    return sock


def read_answer(sock: socket.socket) -> bytes:
    """One answer with a Content-Length body (the server's own answers all have one)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    top, _, body = data.partition(b"\r\n\r\n")
    length = int(re.search(rb"content-length: (\d+)", top, re.IGNORECASE).group(1))  # type: ignore[union-attr]
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return top + b"\r\n\r\n" + body


def closed_after(sock: socket.socket, limit: float) -> float | None:
    """Seconds until the server closed the connection, or None if it was still open at `limit`."""
    began = time.monotonic()
    sock.settimeout(limit)
    try:
        while sock.recv(65536):
            pass
    except TimeoutError:
        return None
    except ConnectionResetError:
        pass
    return time.monotonic() - began


def test_row34_a_head_over_64_kB_gets_431_and_the_connection_closes(served):
    """One byte over the limit is refused, and the connection closed once the answer is sent;
    a head of up to 64 kB is served, and its connection kept for the next request."""
    for size in (70_000, LIMIT + 1):
        with connect(served.port) as sock:
            sock.sendall(head(size))
            answer = read_answer(sock)
            assert answer.startswith(b"HTTP/1.1 431 "), (size, answer[:200])
            assert b"connection: close" in answer.lower()
            assert b"at most 65536 bytes" in answer
            after = closed_after(sock, 5)
            assert after is not None and after < 1, "closed once the answer is sent"
    with connect(served.port) as sock:
        for size in (60_000, LIMIT, 200):
            sock.sendall(head(size))
            answer = read_answer(sock)
            assert answer.startswith(b"HTTP/1.1 200 "), (size, answer[:200])
            assert b'{"status":"ok","database":"ok",' in answer, answer[-200:]


def test_row34_a_huge_header_sent_in_pieces_is_refused_early(served):
    """The limit counts the head however it arrives, across reads: 1 MB in 4 kB pieces."""
    with connect(served.port) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: ")
        sent = 0
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            while sent < 1_000_000:
                sock.sendall(b"a" * 4096)
                sent += 4096
        assert read_answer(sock).startswith(b"HTTP/1.1 431 ")


def test_row34_an_unfinished_head_is_closed_after_the_timeout(served):
    """Half a head, nothing at all, a byte at a time (slowloris), or a second request's head
    unfinished after a first answer: each connection is closed HEADER_TIMEOUT_SECONDS on."""
    stalled = [connect(served.port) for _ in range(40)]
    for sock in stalled[:30]:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Half: ")
    began = time.monotonic()

    trickle = connect(served.port)
    stop = threading.Event()

    def drip() -> None:
        with contextlib.suppress(OSError):
            trickle.sendall(b"GET /healthz HTTP/1.1\r\n")
            while not stop.is_set():
                trickle.sendall(b"X")
                time.sleep(0.2)

    dripping = threading.Thread(target=drip)
    dripping.start()

    second = connect(served.port)
    second.sendall(head(200))
    assert read_answer(second).startswith(b"HTTP/1.1 200 ")
    second.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and no end, ever
    try:
        waited = [closed_after(sock, HEADER_TIMEOUT + 4) for sock in [*stalled, trickle, second]]
        total = time.monotonic() - began
    finally:
        stop.set()
        dripping.join()
        for sock in [*stalled, trickle, second]:
            sock.close()
    assert None not in waited, "every connection without a full head is closed"
    assert HEADER_TIMEOUT - 0.5 < total < HEADER_TIMEOUT + 4
    # A complete head in time is not affected: the server still answers.
    assert httpx.get(f"{served.url}/healthz", timeout=5).status_code == 200


def memory(pid: int, field: str) -> int:
    """A figure of /proc/<pid>/status in bytes (VmRSS now, VmHWM the peak)."""
    text = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(rf"^{field}:\s+(\d+) kB", text, re.MULTILINE).group(1)) * 1024  # type: ignore[union-attr]


def test_row34_large_unfinished_heads_do_not_grow_the_workers_memory(served):
    """Eight connections each send 6 MB of one header that never ends (48 MB in all): the
    worker's peak resident memory grows by a fraction of that (each holds 64 kB at most)."""
    (pid,) = served._worker_pids()
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # the peak starts again from now
    before = memory(pid, "VmRSS")
    senders, size = 8, 6_000_000

    def send() -> None:
        with connect(served.port, timeout=20) as sock:
            with contextlib.suppress(OSError):
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ")
                for _ in range(size // 65536):
                    sock.sendall(b"a" * 65536)
                time.sleep(1)  # held open: what the worker keeps of it is still there
            peaks.append(memory(pid, "VmHWM"))

    peaks: list[int] = []
    threads = [threading.Thread(target=send) for _ in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    growth = max(peaks) - before
    assert growth < 16_000_000, f"the worker grew by {growth / 1e6:.0f} MB"
    assert httpx.get(f"{served.url}/healthz", timeout=5).status_code == 200


@pytest.fixture(scope="module")
def developing(tmp_path_factory: pytest.TempPathFactory, mailbox: Mailbox) -> Iterator[str]:
    """uvicorn as scripts/run.sh starts it (`make run`), without the file watcher."""
    with development_uvicorn(tmp_path_factory.mktemp("dev"), mailbox) as url:
        yield url


def test_row34_no_websocket_upgrade_leaves_the_bounded_protocol(served, developing):
    """The app has no WebSocket: an upgrade is answered as the plain request it also is, so
    no connection moves to a protocol without these limits."""
    for url in (served.url, developing):
        port = int(url.rsplit(":", 1)[1])
        with connect(port) as sock:
            sock.sendall(
                b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\n"
                b"Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
                b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
            )
            answer = read_answer(sock)
        assert answer.startswith(b"HTTP/1.1 200 "), (url, answer[:200])
        assert b'{"status":"ok","database":"ok",' in answer


def test_row40_no_server_banner(served, developing):
    """No `Server` header on any answer: the app's, and the server's own 431 and 400, served
    by gunicorn with our worker and by uvicorn as scripts/run.sh starts it."""
    assert "server" not in httpx.get(f"{served.url}/healthz", timeout=5).headers
    assert "server" not in httpx.get(f"{served.url}/login", timeout=5).headers
    with connect(served.port) as sock:
        sock.sendall(b"NOT HTTP\r\n\r\n")
        bad = read_answer(sock)
    with connect(served.port) as sock:
        sock.sendall(head(70_000))
        too_large = read_answer(sock)
    for answer in (bad, too_large):
        assert answer.startswith((b"HTTP/1.1 400 ", b"HTTP/1.1 431 ")), answer[:100]
        assert b"\r\nserver:" not in answer.lower()

    page = httpx.get(f"{developing}/login", timeout=5)
    assert page.status_code == 200 and "server" not in page.headers
    with connect(int(developing.rsplit(":", 1)[1])) as sock:
        sock.sendall(head(70_000))
        answer = read_answer(sock)
    assert answer.startswith(b"HTTP/1.1 431 "), "the same limit under uvicorn"
    assert b"\r\nserver:" not in answer.lower()


def run_sh_command(port: int) -> list[str]:
    """scripts/run.sh's uvicorn command line, without --reload (a file watcher) for a test."""
    text = (ROOT / "scripts/run.sh").read_text().replace("\\\n", " ")
    match = re.search(r"^(?:exec )?(\.venv/bin/uvicorn .+)$", text, re.MULTILINE)
    assert match, "scripts/run.sh starts uvicorn"
    line = match.group(1).replace('"${HOST:-127.0.0.1}"', "127.0.0.1")
    line = line.replace('"${PORT:-8000}"', str(port))
    words = shlex.split(line)
    command: list[str] = []
    skip = False
    for word in words:
        if skip:
            skip = False
        elif word == "--reload-dir":
            skip = True
        elif word != "--reload":
            command.append(word)
    command[0] = str(ROOT / command[0])
    return command


@contextlib.contextmanager
def development_uvicorn(tmp_path: Path, mailbox: Mailbox) -> Iterator[str]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'dev.sqlite3'}"
    port = free_port()
    env = server_env(url, port, mailbox.port, HEADER_TIMEOUT_SECONDS=str(HEADER_TIMEOUT))
    migrate(url, env)
    process = subprocess.Popen(
        run_sh_command(port),
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, "uvicorn exited"
            try:
                httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "uvicorn did not answer"
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=15)


# Print views and exports: in memory a batch at a time, at most two at once per user.


async def long_entries(session: Any, user: User, count: int, html_size: int) -> None:
    start = date(2025, 1, 1)
    session.add_all(
        Entry(
            user_id=user.id,
            day=start + timedelta(days=i // 3),
            title=f"Win {i:04d}",
            body="see below",
            body_html=f"<p>{i:04d} " + "w" * html_size + "</p>",
        )
        for i in range(count)
    )
    await session.commit()


class Driven:
    """One request through the ASGI app, its body dropped as it comes (no client buffer):
    `sent` counts the bytes; `hold` (when given) stops the answer after its first chunk;
    `broken`: sending a chunk fails (the connection reset)."""

    def __init__(
        self,
        app: Any,
        path: str,
        token: str,
        hold: asyncio.Event | None = None,
        broken: bool = False,
    ):
        self.app, self.path, self.token, self.hold, self.broken = app, path, token, hold, broken
        self.status = 0
        self.sent = 0
        self.started = asyncio.Event()
        self.gone = asyncio.Event()  # set: the client disconnects

    async def run(self) -> None:
        path, _, query = self.path.partition("?")
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": query.encode(),
            "root_path": "",
            "headers": [
                (b"host", b"testserver"),
                (b"authorization", f"Bearer {self.token}".encode()),
            ],
            "client": ("203.0.113.9", 50000),
            "server": ("testserver", 80),
        }
        asked = False

        async def receive() -> dict[str, Any]:
            nonlocal asked
            if not asked:
                asked = True
                return {"type": "http.request", "body": b"", "more_body": False}
            await self.gone.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                self.status = message["status"]
            else:
                if self.broken:
                    raise ConnectionResetError("the client has gone")
                self.sent += len(message.get("body", b""))
                if not self.started.is_set():
                    self.started.set()
                    if self.hold is not None:
                        await self.hold.wait()

        await self.app(scope, receive, send)


@pytest.fixture
async def token(client: httpx.AsyncClient, alice: User) -> str:
    return await bearer_token(client, "alice@example.com")


async def test_row34_the_print_view_is_streamed_not_built_whole(app, session, alice, token):
    """600 long entries (an 18 MB page): the request's peak memory stays a small part of it
    (a batch of entries and its HTML, about 3 MB; built whole it was three times the page)."""
    await long_entries(session, alice, 600, 30_000)
    path = "/export/print?date_from=2025-01-01&date_to=2025-12-31"
    await Driven(app, path, token).run()  # templates and queries warmed up
    tracemalloc.start()
    try:
        base, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        driven = Driven(app, path, token)
        await driven.run()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert driven.status == 200 and driven.sent > 18_000_000
    assert peak - base < driven.sent / 4, f"{(peak - base) / 1e6:.1f} MB for the page"


async def test_row34_the_printout_keeps_its_order_days_and_newest_entries(
    client, session, alice, token, monkeypatch
):
    """Streamed in batches, the page reads as before: oldest first, one heading per day across
    batches; past PRINT_MAX the newest entries are kept and the page says so."""
    monkeypatch.setattr(export, "PRINT_MAX", 50)
    await long_entries(session, alice, 60, 10)  # 20 days of 3 wins
    bearer = {"Authorization": f"Bearer {token}"}
    page = (
        await client.get("/export/print?date_from=2025-01-01&date_to=2025-12-31", headers=bearer)
    ).text
    wins = re.findall(r"Win (\d{4})", page)
    assert wins == [f"{i:04d}" for i in range(10, 60)], "the newest 50, oldest first"
    assert page.count("<h2") == len(set(range(10 // 3, 60 // 3)))
    assert "newest 50 wins of these dates" in page
    assert page.rstrip().endswith("</html>")
    empty = (
        await client.get("/export/print?date_from=2020-01-01&date_to=2020-01-02", headers=bearer)
    ).text
    assert "No wins in these dates." in empty and "newest" not in empty


async def test_row34_at_most_two_exports_or_print_views_at_once_per_user(
    app, client, session, alice, token
):
    """Two answers on their way (held after their first chunk): a third export or print view
    of the same user gets 429 with a reason; another user is not affected; once one ends, the
    next is served."""
    await long_entries(session, alice, 30, 100)
    await make_user(session, "bob@example.com")
    bob = {"Authorization": f"Bearer {await bearer_token(client, 'bob@example.com')}"}
    hold = asyncio.Event()
    running = [
        Driven(app, "/api/v1/export?format=json", token, hold),
        Driven(app, "/export/print?date_from=2025-01-01&date_to=2025-12-31", token, hold),
    ]
    tasks = [asyncio.create_task(d.run()) for d in running]
    try:
        await asyncio.wait_for(asyncio.gather(*(d.started.wait() for d in running)), 10)
        bearer = {"Authorization": f"Bearer {token}"}
        refused = await client.get("/api/v1/export?format=csv", headers=bearer)
        assert refused.status_code == 429
        assert refused.json() == {"detail": "TOO_MANY_EXPORTS"}
        assert refused.headers["retry-after"]
        page = await client.get(
            "/export/print?date_from=2025-01-01", headers={**bearer, "Accept": "text/html"}
        )
        assert page.status_code == 429
        assert "already on their way" in page.text and "Wait for one to finish" in page.text
        assert (await client.get("/api/v1/export", headers=bob)).status_code == 200
    finally:
        hold.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 10)
    assert [d.status for d in running] == [200, 200]
    assert all(d.sent > 3000 for d in running), "both answers were sent whole"
    assert (await client.get("/api/v1/export", headers=bearer)).status_code == 200
    assert alice.id not in export.slots.running, "every slot was given back"


async def test_row34_a_client_that_leaves_gives_its_export_slot_back(app, session, alice, token):
    """Whether the client disconnects mid-answer or sending to it fails, the slot comes back:
    three in a row, more than the two at once, each find one free."""
    await long_entries(session, alice, 30, 100)
    for path in ("/api/v1/export?format=markdown", "/export/print?date_from=2025-01-01"):
        for _ in range(3):
            hold = asyncio.Event()
            driven = Driven(app, path, token, hold)
            task = asyncio.create_task(driven.run())
            await asyncio.wait_for(driven.started.wait(), 10)
            assert export.slots.running[alice.id] == 1
            driven.gone.set()  # the client disconnects mid-answer
            hold.set()
            await asyncio.wait_for(task, 10)
            assert alice.id not in export.slots.running, path
        for _ in range(3):
            with pytest.raises(OSError):
                await Driven(app, path, token, broken=True).run()
            assert alice.id not in export.slots.running, path
