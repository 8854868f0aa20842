"""SECURITY.md rows 34 and 40 (the banner): slow and huge requests against the served
configuration (gunicorn with app.worker.Worker, and uvicorn as scripts/run.sh starts it), and
print views and exports bounded in memory and in number per user."""

import contextlib
import os
import re
import shlex
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import Mailbox
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
            assert answer.endswith(b'{"status":"ok","database":"ok"}'), answer[-200:]


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


def test_row40_no_server_banner(served, tmp_path: Path, mailbox: Mailbox):
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

    with development_uvicorn(tmp_path, mailbox) as url:
        page = httpx.get(f"{url}/login", timeout=5)
        assert page.status_code == 200 and "server" not in page.headers
        port = int(url.rsplit(":", 1)[1])
        with connect(port) as sock:
            sock.sendall(head(70_000))
            assert read_answer(sock).startswith(b"HTTP/1.1 431 "), "the same limit under uvicorn"


def run_sh_command(port: int) -> list[str]:
    """scripts/run.sh's uvicorn command line, without --reload (a file watcher) for a test."""
    text = (ROOT / "scripts/run.sh").read_text().replace("\\\n", " ")
    match = re.search(r"^exec (\.venv/bin/uvicorn .+)$", text, re.MULTILINE)
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
