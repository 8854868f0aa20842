"""`make bench` (python -m bench): SuccessDiary under load, on SQLite and PostgreSQL.

Per backend: a fresh database seeded in bulk (bench/seed.py), then the bare FastAPI "hello"
app (bench/hello.py) and the app itself, each served by the production command (gunicorn, one
uvicorn worker), driven by wrk while the server's memory is sampled. Prints one table per
backend (req/s, ratio to hello, p50/p95/p99, errors, peak RSS), the export figures, and the
targets of issue 6 with PASS or FAIL. A measurement, not a test: it exits 0 either way.

    make bench                                                    # SQLite
    BENCH_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/sd_bench make bench

Environment: BENCH_DATABASE_URL (PostgreSQL, its public schema is DROPPED), BENCH_BACKENDS
(default "sqlite,postgresql"), BENCH_SECONDS (per wrk run, default 6), BENCH_CONNECTIONS
(default 16), BENCH_SCENARIOS (comma-separated names to run only those, e.g. "list,search-rare").
"""

import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import urlencode

import httpx
from sqlalchemy import create_engine, text

from bench.load import WRK, MemorySampler, Run, drive, raise_open_files_limit
from bench.seed import COMMON, HANDFUL, HEAVY_EMAIL, RARE, fresh_database, seed, sync_url
from tests.live_server import PASSWORD, ROOT, LiveServer, free_port

SECONDS = float(os.environ.get("BENCH_SECONDS", "6"))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "16"))
ONLY = {s.strip() for s in os.environ.get("BENCH_SCENARIOS", "").split(",") if s.strip()}
RESULTS = ROOT / "bench" / "results"
WRITERS, WRITES_EACH = 20, 25
# What a browser sends with a page request: the app gzips what it may (see README, BREACH).
BROWSER = {"Accept": "text/html", "Accept-Encoding": "gzip, br", "Sec-Fetch-Site": "same-origin"}
# Production writes its log as JSON lines (one access line per request), development as text.
PRODUCTION_LOGS = {"LOG_FORMAT": "json"}
LOCK_SIGNS = ("database is locked", "database unavailable: OperationalError")
MANY = 1_000
MANY_TIMEOUT = 30  # s: a user (or a proxy's read timeout) gives up on a page after this
# Held past the timeout (wrk checks every 2 s), so a connection still unanswered after 30 s is
# a timeout error instead of a request wrk silently drops when the run ends.
MANY_SECONDS = MANY_TIMEOUT + 5
# Targets of issue 6 (one worker, one run).
LIST_RATIO_MIN = 0.20
P95_FACTOR_MAX = 2.0
EXPORT_GROWTH_MAX_MB = 50.0


class Session:
    """The heavy user logged in twice: a browser session (cookie + CSRF) and an API token."""

    def __init__(self, server: LiveServer) -> None:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            login = client.post(
                "/api/v1/auth/cookie/login", data={"username": HEAVY_EMAIL, "password": PASSWORD}
            )
            login.raise_for_status()
            client.get("/entries").raise_for_status()  # sets the CSRF cookie
            self.cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
            self.csrf = client.cookies["csrftoken"]
        self.token = server.bearer_token(HEAVY_EMAIL)
        self.page = {"Cookie": self.cookie, **BROWSER}
        self.api = {"Authorization": f"Bearer {self.token}", "Accept-Encoding": "gzip"}


def warm(url: str, headers: dict[str, str], method: str = "GET", body: str | None = None) -> None:
    """A few requests first: templates compiled, caches and connections warm."""
    content = body.encode() if body is not None else None
    for _ in range(3):
        httpx.request(method, url, headers=headers, content=content, timeout=60)


def settle(base: str, limit: float = 180.0) -> None:
    """Wait until the server has worked off what wrk left queued (after 1,000 connections a
    backlog takes a while): the next scenario must start on an idle server."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        started = time.perf_counter()
        httpx.get(f"{base}/healthz", timeout=limit)
        if time.perf_counter() - started < 0.1:
            return
        time.sleep(0.5)


def scenario_plan(server: LiveServer, session: Session) -> list[dict]:
    ten_years_ago = (date.today() - timedelta(days=3650)).isoformat()
    quick_add = urlencode(
        {
            "day": date.today().isoformat(),
            "title": "Quick win from the benchmark",
            "body": "Wrote it down in **ten seconds**.",
            "tags": "bench",
            "mood": "4",
            "csrftoken": session.csrf,
        }
    )
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    return [
        {"name": "list", "path": "/entries", "headers": session.page},
        {"name": "dashboard", "path": "/dashboard", "headers": session.page},
        {"name": "stats-streaks", "path": "/api/v1/stats/streaks", "headers": session.api},
        {
            "name": "stats-timeline",
            "path": f"/api/v1/stats/timeline?period=week&date_from={ten_years_ago}",
            "headers": session.api,
        },
        {
            "name": "stats-money",
            "path": f"/api/v1/stats/money?period=month&date_from={ten_years_ago}",
            "headers": session.api,
        },
        {"name": "search-common", "path": f"/entries?q={COMMON}", "headers": session.page},
        {"name": "search-rare", "path": f"/entries?q={RARE}", "headers": session.page},
        {"name": "search-handful", "path": f"/entries?q={HANDFUL}", "headers": session.page},
        {
            "name": "quick-add",
            "path": "/entries",
            "method": "POST",
            "body": quick_add,
            "headers": {
                **session.page,
                **form,
                "Origin": server.url,
                "HX-Request": "true",
                "HX-Target": "entries",
                "x-csrftoken": session.csrf,
            },
        },
        {
            "name": "list-1000",
            "path": "/entries",
            "headers": session.page,
            "connections": MANY,
            "timeout": MANY_TIMEOUT,
        },
        {
            "name": "login",
            "path": "/api/v1/auth/bearer/login",
            "method": "POST",
            "body": urlencode({"username": HEAVY_EMAIL, "password": PASSWORD}),
            "headers": form,
            "connections": 4,
        },
    ]


def money_cold(server: LiveServer, session: Session, n: int = 30) -> dict[str, float]:
    """The money stats uncached: each request names another ten-year range, so each is a
    cache miss and converts every one of the heavy user's 10,950 wins (one at a time)."""
    today, times = date.today(), []
    with httpx.Client(base_url=server.url, headers=session.api, timeout=60) as client:
        for i in range(n):
            end = today - timedelta(days=i + 1)
            start = end - timedelta(days=3650)
            started = time.perf_counter()
            client.get(
                f"/api/v1/stats/money?period=month&date_from={start}&date_to={end}"
            ).raise_for_status()
            times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return {
        "requests": n,
        "p50": times[n // 2],
        "p95": times[min(n - 1, round(n * 0.95))],
        "max": times[-1],
    }


def run_plan(server: LiveServer, plan: list[dict], hello_rps: float) -> list[Run]:
    assert server.process is not None
    runs = []
    for step in plan:
        if ONLY and step["name"] not in ONLY:
            continue
        url = server.url + step["path"]
        method, body = step.get("method", "GET"), step.get("body")
        connections = step.get("connections", CONNECTIONS)
        warm(url, step["headers"], method, body)
        run = drive(
            step["name"],
            url,
            server.process.pid,
            connections=connections,
            seconds=MANY_SECONDS if connections == MANY else SECONDS,
            headers=step["headers"],
            method=method,
            body=body,
            timeout=step.get("timeout", 10),
        )
        run.hello_ratio = run.rps / hello_rps if hello_rps else None
        print_run(run)
        settle(server.url)
        runs.append(run)
    return runs


async def concurrent_writes(server: LiveServer, url: str) -> dict[str, object]:
    """WRITERS users post WRITES_EACH entries each, all at once, through the JSON API; then
    every 201 must be a row in the database (0 lost) and nothing else may have failed."""
    tokens = [server.bearer_token(f"user{i}@bench.example") for i in range(1, WRITERS + 1)]
    statuses: dict[int, int] = {}

    async def writer(client: httpx.AsyncClient, n: int, token: str) -> None:
        for k in range(WRITES_EACH):
            response = await client.post(
                "/api/v1/entries",
                json={"title": f"bench-write {n}-{k}", "body": "Concurrent write.", "mood": 3},
                headers={"Authorization": f"Bearer {token}"},
            )
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

    started = time.perf_counter()
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
        await asyncio.gather(*(writer(client, n, t) for n, t in enumerate(tokens)))
    seconds = time.perf_counter() - started
    engine = create_engine(sync_url(url))
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT count(*) FROM entry WHERE title LIKE 'bench-write %'")
        ).scalar_one()
    engine.dispose()
    created = statuses.get(201, 0)
    return {
        "writes": WRITERS * WRITES_EACH,
        "writers": WRITERS,
        "created": created,
        "rows": rows,
        "lost": max(0, created - rows),
        "failed": WRITERS * WRITES_EACH - created,
        "statuses": statuses,
        "seconds": seconds,
    }


def export(url: str, smtp: int) -> list[dict[str, float | str]]:
    """The heavy user's export in each format: time, size and the server's RSS growth (peak
    minus before). Each format gets a freshly started server, so memory that an earlier
    scenario left allocated cannot hide what the export itself needs."""
    figures = []
    for fmt in ("json", "markdown", "csv"):
        with LiveServer(
            database_url=url, smtp_port=smtp, migrate_first=False, **PRODUCTION_LOGS
        ) as server:
            assert server.process is not None
            token = server.bearer_token(HEAVY_EMAIL)
            size = 0
            with MemorySampler(server.process.pid) as memory:
                started = time.perf_counter()
                with httpx.stream(
                    "GET",
                    f"{server.url}/api/v1/export?format={fmt}",
                    headers={"Authorization": f"Bearer {token}"},
                    timeout=600,
                ) as response:
                    response.raise_for_status()
                    for chunk in response.iter_bytes():
                        size += len(chunk)
                seconds = time.perf_counter() - started
        figures.append(
            {
                "format": fmt,
                "seconds": seconds,
                "mb": size / 1e6,
                "before_mb": memory.before,
                "peak_mb": memory.peak,
                "growth_mb": memory.growth,
            }
        )
    return figures


def print_header() -> None:
    print(
        f"{'scenario':16} {'conns':>5} {'req/s':>8} {'x hello':>7} {'p50 ms':>8} "
        f"{'p95 ms':>8} {'p99 ms':>8} {'errors':>7} {'peak MB':>8} {'kB/resp':>8}"
    )


def print_run(run: Run) -> None:
    ratio = f"{run.hello_ratio:7.3f}" if run.hello_ratio is not None else f"{'':7}"
    detail = f"  {run.error_detail}" if run.error_detail else ""
    print(
        f"{run.scenario:16} {run.connections:5} {run.rps:8.1f} {ratio} {run.p50:8.1f} "
        f"{run.p95:8.1f} {run.p99:8.1f} {run.errors:7} {run.peak_mb:8.1f} "
        f"{run.response_kb:8.1f}{detail}",
        flush=True,
    )


@dataclass
class Check:
    """One target of issue 6 against what was measured; `row` is the scenario it belongs to."""

    row: str
    target: str
    measured: str
    passed: bool


def targets(
    backend: str, runs: dict[str, Run], writes: dict | None, exports: list[dict], locked: int
) -> list[Check]:
    """Every target whose scenarios ran."""
    checks: list[Check] = []
    listing = runs.get("list")
    if listing and listing.hello_ratio is not None:
        checks.append(
            Check(
                "list",
                f">= {LIST_RATIO_MIN:.2f} x hello",
                f"{listing.hello_ratio:.3f}",
                listing.hello_ratio >= LIST_RATIO_MIN,
            )
        )
    for name in (
        "search-common",
        "search-rare",
        "search-handful",
        "stats-streaks",
        "stats-timeline",
        "stats-money",
    ):
        if listing and name in runs:
            limit = P95_FACTOR_MAX * listing.p95
            checks.append(
                Check(
                    name,
                    f"p95 <= {P95_FACTOR_MAX:g}x list p95 ({limit:.0f} ms)",
                    f"{runs[name].p95:.0f} ms",
                    runs[name].p95 <= limit,
                )
            )
    if "list-1000" in runs:
        many = runs["list-1000"]
        # wrk does not count a request still waiting when the run ends, so every connection
        # must also have had an answer: as many answers as connections, none over the timeout.
        checks.append(
            Check(
                "list-1000",
                f"0 errors, {MANY:,} answered within {MANY_TIMEOUT} s",
                f"{many.errors} errors, {many.requests:,} answers",
                many.errors == 0 and many.requests >= MANY,
            )
        )
    for figure in exports:
        checks.append(
            Check(
                f"export-{figure['format']}",
                f"RSS growth < {EXPORT_GROWTH_MAX_MB:g} MB",
                f"{figure['growth_mb']:.1f} MB",
                float(figure["growth_mb"]) < EXPORT_GROWTH_MAX_MB,
            )
        )
    if writes is not None:
        checks.append(
            Check(
                "writes",
                "0 lost, 0 failed",
                f"{writes['lost']} lost, {writes['failed']} failed",
                writes["lost"] == 0 and writes["failed"] == 0,
            )
        )
        if backend == "sqlite":
            checks.append(
                Check(
                    "writes", '"database is locked" never logged', f"{locked} logged", locked == 0
                )
            )
    return checks


def summary(result: dict) -> str:
    """The backend's results as Markdown tables (printed at the end, kept for the README)."""
    verdicts: dict[str, list[dict]] = {}
    for check in result["targets"]:
        verdicts.setdefault(check["row"], []).append(check)

    def verdict(row: str) -> str:
        return "; ".join(
            f"**{'PASS' if c['passed'] else 'FAIL'}** {c['target']}" for c in verdicts.get(row, [])
        )

    lines = [
        f"{result['backend']} ({result['seeded']})",
        "",
        "| scenario | conns | req/s | x hello | p50 ms | p95 ms | p99 ms | errors | peak RSS MB | kB/resp | target |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|",
    ]
    for run in result["runs"]:
        lines.append(
            f"| {run['scenario']} | {run['connections']} | {run['rps']:.1f} | "
            f"{run['hello_ratio']:.3f} | {run['p50']:.1f} | {run['p95']:.1f} | {run['p99']:.1f} | "
            f"{run['errors']} | {run['peak_mb']:.0f} | {run['response_kb']:.1f} | "
            f"{verdict(run['scenario'])} |"
        )
    if result["exports"]:
        lines += [
            "",
            "| export (heavy user) | seconds | MB | RSS before MB | peak MB | growth MB | target |",
            "|---|--:|--:|--:|--:|--:|---|",
        ]
        for f in result["exports"]:
            lines.append(
                f"| {f['format']} | {f['seconds']:.2f} | {f['mb']:.1f} | {f['before_mb']:.0f} | "
                f"{f['peak_mb']:.0f} | {f['growth_mb']:.1f} | {verdict('export-' + f['format'])} |"
            )
    writes = result["writes"]
    if writes:
        lines += [
            "",
            f"concurrent writes: {writes['writes']} API posts by {writes['writers']} users at "
            f"once, {writes['seconds']:.1f} s: {writes['created']} created, {writes['rows']} rows "
            f"in the database. {verdict('writes')}",
        ]
    return "\n".join(lines)


def bench_backend(backend: str, url: str) -> dict:
    print(f"\n=== {backend}: {url.rsplit('@', 1)[-1]} ===", flush=True)
    fresh_database(url)
    seeded = seed(url)
    print(
        f"seeded {seeded.users:,} users, {seeded.entries:,} entries (heavy user: "
        f"{seeded.heavy_entries:,}) in {seeded.seconds:.1f} s; wrk {SECONDS:g} s per run, "
        f"{CONNECTIONS} connections unless stated; one gunicorn worker",
        flush=True,
    )
    print_header()
    smtp = free_port()  # nothing is mailed; the app only needs somewhere to point
    with LiveServer(
        database_url=url,
        smtp_port=smtp,
        migrate_first=False,
        app="bench.hello:create_app()",
        **PRODUCTION_LOGS,
    ) as hello_server:
        assert hello_server.process is not None
        warm(hello_server.url + "/hello", BROWSER)
        hello = drive(
            "hello",
            hello_server.url + "/hello",
            hello_server.process.pid,
            connections=CONNECTIONS,
            seconds=SECONDS,
            headers=BROWSER,
        )
        hello.hello_ratio = 1.0
        print_run(hello)
    with LiveServer(
        database_url=url, smtp_port=smtp, migrate_first=False, **PRODUCTION_LOGS
    ) as server:
        session = Session(server)
        runs = run_plan(server, scenario_plan(server, session), hello.rps)
        cold = None
        if not ONLY or "stats-money" in ONLY:
            cold = money_cold(server, session)
            print(
                f"stats-money uncached (each a cache miss, one at a time): {cold['requests']} "
                f"requests, p50 {cold['p50']:.1f} ms, p95 {cold['p95']:.1f} ms, "
                f"max {cold['max']:.1f} ms",
                flush=True,
            )
        writes = None
        if not ONLY or "writes" in ONLY:
            writes = asyncio.run(concurrent_writes(server, url))
            print(
                f"concurrent writes: {writes['writes']} by {writes['writers']} users in "
                f"{writes['seconds']:.1f} s: {writes['created']} created, {writes['rows']} rows, "
                f"{writes['lost']} lost, statuses {writes['statuses']}",
                flush=True,
            )
        log = server.log.read_text(errors="replace")
    exports = export(url, smtp) if not ONLY or "export" in ONLY else []
    if exports:
        print(f"\nexport of the heavy user ({seeded.heavy_entries:,} entries), a fresh server each")
        print(
            f"{'format':10} {'seconds':>8} {'MB':>7} {'RSS before':>11} {'peak':>7} {'growth':>7}"
        )
        for f in exports:
            print(
                f"{f['format']:10} {f['seconds']:8.2f} {f['mb']:7.1f} {f['before_mb']:11.1f} "
                f"{f['peak_mb']:7.1f} {f['growth_mb']:7.1f}"
            )
    # The app answers a locked SQLite database with a 503 and logs "database unavailable:
    # OperationalError" (without the message), so both spellings count as a lock.
    locked = sum(log.count(sign) for sign in LOCK_SIGNS)
    by_name = {r.scenario: r for r in runs}
    checks = targets(backend, by_name, writes, exports, locked)
    print(f"\ntargets ({backend})")
    for check in checks:
        print(
            f"  {'PASS' if check.passed else 'FAIL'}  {check.row:15} {check.target:45} "
            f"{check.measured}"
        )
    return {
        "backend": backend,
        "seeded": f"{seeded.users:,} users, {seeded.entries:,} entries, seeded in "
        f"{seeded.seconds:.0f} s; wrk {SECONDS:g} s per run",
        "runs": [vars(r) | {"rps": r.rps} for r in [hello, *runs]],
        "writes": writes,
        "exports": exports,
        "money_cold": cold,
        "locked": locked,
        "targets": [vars(c) for c in checks],
        "server_log": str(server.log),
    }


def backends(tmp: str) -> list[tuple[str, str]]:
    wanted = os.environ.get("BENCH_BACKENDS", "sqlite,postgresql").split(",")
    chosen = []
    if "sqlite" in wanted:
        chosen.append(("sqlite", f"sqlite+aiosqlite:///{tmp}/bench.sqlite3"))
    pg = os.environ.get("BENCH_DATABASE_URL", "")
    if "postgresql" in wanted:
        if pg.startswith("postgresql"):
            chosen.append(("postgresql", pg))
        else:
            print(
                "PostgreSQL skipped: set BENCH_DATABASE_URL=postgresql+psycopg://user@host/db "
                "(a database that may be emptied)"
            )
    return chosen


def main() -> None:
    if not Path(WRK).exists():
        sys.exit("wrk is missing: `apt-get install wrk` (Debian/Ubuntu), then run make bench again")
    fds = raise_open_files_limit()
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    print(
        f"SuccessDiary bench: commit {commit or '?'}, {os.cpu_count()} CPUs, "
        f"{platform.python_implementation()} {platform.python_version()}, open files {fds}"
    )
    RESULTS.mkdir(exist_ok=True)
    tables = []
    with tempfile.TemporaryDirectory() as tmp:
        for backend, url in backends(tmp):
            result = bench_backend(backend, url)
            (RESULTS / f"{backend}.json").write_text(json.dumps(result, indent=2, default=str))
            tables.append(summary(result))
    report = f"commit {commit or '?'}, {os.cpu_count()} CPUs\n\n" + "\n\n".join(tables)
    (RESULTS / "results.md").write_text(report + "\n")
    print(f"\n=== summary ===\n{report}\n\nsaved in {RESULTS.relative_to(ROOT)}/")


if __name__ == "__main__":
    main()
