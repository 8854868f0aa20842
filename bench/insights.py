"""Insights benchmark: the stats endpoints and the dashboard for a user with ten years of
daily wins (3,650 entries), served as in production (uvicorn, one worker, no reload).

    make bench                      # SQLite
    BENCH_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/sd_bench make bench

Prints, per endpoint: requests, requests/s with 8 concurrent clients, p50/p95/p99 in ms, errors.
"""

import asyncio
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import create_engine, insert, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.auth import password_helper  # noqa: E402
from app.markdown import render  # noqa: E402
from app.models import Category, Entry, EntryTag, User  # noqa: E402

PASSWORD = "correct horse battery staple"
YEARS = 10
REQUESTS = 200
CONCURRENCY = 8
ENDPOINTS = [
    "/api/v1/stats/summary",
    "/api/v1/stats/timeline?period=day",
    "/api/v1/stats/timeline?period=week&date_from=2017-01-01",
    "/api/v1/stats/timeline?period=month&date_from=2017-01-01",
    "/api/v1/stats/categories",
    "/api/v1/stats/mood",
    "/api/v1/stats/streaks",
    "/api/v1/stats/heatmap",
    "/api/v1/stats/on-this-day",
    "/dashboard",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def sync_url(url: str) -> str:
    return url.replace("sqlite+aiosqlite", "sqlite")


def migrate(url: str) -> None:
    env = {**os.environ, "DATABASE_URL": url}
    if not url.startswith("sqlite"):
        engine = create_engine(sync_url(url), isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        engine.dispose()
    subprocess.run(
        [str(ROOT / ".venv/bin/alembic"), "upgrade", "head"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )


def seed(url: str) -> str:
    """One user with a win on every day of the last ten years, in bulk."""
    engine = create_engine(sync_url(url))
    user_id = uuid.uuid4()
    random.seed(42)
    today = date.today()
    body = "Finished the **quarterly report** a day early. #work #focus"
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
                    "created_at": datetime.now(UTC),
                }
            ],
        )
        ids = []
        for name, colour in [("Work", "#2563eb"), ("Health", "#16a34a"), ("Learning", "#9333ea")]:
            ids.append(
                conn.execute(
                    insert(Category).returning(Category.id),
                    [
                        {
                            "user_id": user_id,
                            "name": name,
                            "colour": colour,
                            "created_at": datetime.now(UTC),
                        }
                    ],
                ).scalar_one()
            )
        now = datetime.now(UTC)
        rows = [
            {
                "user_id": user_id,
                "category_id": random.choice(ids),
                "day": today - timedelta(days=i),
                "title": f"Win number {i}",
                "body": body,
                "body_html": render(body),
                "tags": "work focus",
                "mood": random.randint(1, 5),
                "created_at": now,
                "updated_at": now,
            }
            for i in range(365 * YEARS)
        ]
        conn.execute(insert(Entry), rows)
        entry_ids = [r[0] for r in conn.execute(text("SELECT id FROM entry"))]
        conn.execute(
            insert(EntryTag),
            [
                {"entry_id": e, "tag": t, "user_id": user_id}
                for e in entry_ids
                for t in ("work", "focus")
            ],
        )
    engine.dispose()
    return f"{len(rows):,} entries"


async def measure(client: httpx.AsyncClient, path: str) -> tuple[float, list[float], int]:
    latencies: list[float] = []
    errors = 0
    queue = list(range(REQUESTS))

    async def worker() -> None:
        nonlocal errors
        while queue:
            queue.pop()
            start = time.perf_counter()
            response = await client.get(path)
            latencies.append((time.perf_counter() - start) * 1000)
            errors += response.status_code != 200

    begin = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return REQUESTS / (time.perf_counter() - begin), sorted(latencies), errors


def pct(values: list[float], p: float) -> float:
    return values[min(len(values) - 1, int(len(values) * p))]


async def run(base: str) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        login = await client.post(
            "/api/v1/auth/bearer/login",
            data={"username": "bench@example.com", "password": PASSWORD},
        )
        token = login.json()["access_token"]
        client.headers["Authorization"] = f"Bearer {token}"
        client.headers["Cookie"] = (
            f"__Host-sd_session={token}"  # the dashboard is a page: session cookie
        )
        for path in ENDPOINTS:
            await client.get(path)  # warm up
        print(
            f"{'endpoint':58} {'req':>5} {'req/s':>8} {'p50':>7} {'p95':>7} {'p99':>7} {'err':>4}"
        )
        for path in ENDPOINTS:
            rate, lat, errors = await measure(client, path)
            print(
                f"{path:58} {REQUESTS:5} {rate:8.1f} {statistics.median(lat):7.1f} {pct(lat, 0.95):7.1f} {pct(lat, 0.99):7.1f} {errors:4}"
            )


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = os.environ.get("BENCH_DATABASE_URL") or f"sqlite+aiosqlite:///{tmp}/bench.sqlite3"
        migrate(url)
        print(
            f"database: {url.split('@')[-1]}; seeded {seed(url)} for one user; {CONCURRENCY} concurrent clients"
        )
        port = free_port()
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "ENVIRONMENT": "production",
            "BASE_URL": f"http://127.0.0.1:{port}",
            "SECRET_KEY": "bench-" + "x" * 40,
            "DOCS_ENABLED": "false",
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
            asyncio.run(run(f"http://127.0.0.1:{port}"))
        finally:
            server.terminate()
            server.wait(timeout=10)


if __name__ == "__main__":
    main()
