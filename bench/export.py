"""Export benchmark: one user with ten years of three wins a day (10,950 entries, ~1 KB each).

Starts the server as in production, downloads each export format and prints the time, the
size, and how much the server's resident memory grew (peak RSS from /proc, sampled).

    make bench        (runs this after bench/insights.py)
"""

import asyncio
import os
import subprocess
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import create_engine, insert

from app.auth import password_helper
from app.markdown import render
from app.models import Entry, User
from bench.insights import PASSWORD, ROOT, free_port, migrate, sync_url

PER_DAY = 3
BODY = (
    "Closed the **Henderson** deal after six weeks; the follow-up call made the difference. " * 12
).strip()


def seed(url: str) -> int:
    engine = create_engine(sync_url(url))
    user_id, now, today = uuid.uuid4(), datetime.now(UTC), date.today()
    with engine.begin() as conn:
        conn.execute(
            insert(User),
            [
                {
                    "id": user_id,
                    "email": "bench@example.com",
                    "hashed_password": password_helper.hash(PASSWORD),
                    "is_active": True,
                    "is_superuser": False,
                    "is_verified": True,
                    "created_at": now,
                }
            ],
        )
        html = render(BODY)
        rows = [
            {
                "user_id": user_id,
                "day": today - timedelta(days=i // PER_DAY),
                "title": f"Win {i}",
                "body": BODY,
                "body_html": html,
                "tags": "work",
                "mood": 1 + i % 5,
                "created_at": now,
                "updated_at": now,
            }
            for i in range(3650 * PER_DAY)
        ]
        for start in range(0, len(rows), 2000):
            conn.execute(insert(Entry), rows[start : start + 2000])
    engine.dispose()
    return len(rows)


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def download(base: str, token: str, fmt: str, pid: int) -> tuple[float, int, int]:
    peak, size = rss_kb(pid), 0
    start = time.perf_counter()
    async with (
        httpx.AsyncClient(
            base_url=base, timeout=300, headers={"Authorization": f"Bearer {token}"}
        ) as client,
        client.stream("GET", f"/api/v1/export?format={fmt}") as response,
    ):
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            peak = max(peak, rss_kb(pid))
    return time.perf_counter() - start, size, peak


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = os.environ.get("BENCH_DATABASE_URL") or f"sqlite+aiosqlite:///{tmp}/export.sqlite3"
        migrate(url)
        count = seed(url)
        port = free_port()
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "ENVIRONMENT": "production",
            "BASE_URL": f"http://127.0.0.1:{port}",
            "SECRET_KEY": "bench-" + "x" * 40,
        }
        server = subprocess.Popen(
            [
                str(ROOT / ".venv/bin/uvicorn"),
                "--factory",
                "app.main:create_app",
                "--port",
                str(port),
                "--no-access-log",
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            env=env,
        )
        try:
            for _ in range(100):
                try:
                    httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                    break
                except httpx.HTTPError:
                    time.sleep(0.1)
            base = f"http://127.0.0.1:{port}"
            token = httpx.post(
                f"{base}/api/v1/auth/bearer/login",
                data={"username": "bench@example.com", "password": PASSWORD},
            ).json()["access_token"]
            print(f"\nexport of {count:,} entries ({url.split('@')[-1].split('/')[-1]})")
            print(
                f"{'format':10} {'seconds':>8} {'MB':>8} {'RSS before MB':>14} {'peak RSS MB':>12} {'growth MB':>10}"
            )
            for fmt in ("json", "csv", "markdown"):
                before = rss_kb(server.pid)
                seconds, size, peak = asyncio.run(download(base, token, fmt, server.pid))
                print(
                    f"{fmt:10} {seconds:8.2f} {size / 1e6:8.1f} {before / 1024:14.1f} {peak / 1024:12.1f} {(peak - before) / 1024:10.1f}"
                )
        finally:
            server.terminate()
            server.wait(timeout=10)


if __name__ == "__main__":
    main()
