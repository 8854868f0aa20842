"""`make bench-ui` (python -m bench.ui): Lighthouse 12's mobile audit of six pages.

A fresh SQLite database, a verified user (the operator's `create-user` command) with three
months of wins written through the API, and the app served by the production command
(gunicorn, one uvicorn worker, JSON logs) as `make bench` does. Lighthouse (npm, pinned in
package.json) runs its default mobile configuration (a Moto G Power-sized screen, simulated
slow 4G and a 4x slower CPU) in Debian's Chromium on /login and /register signed out and on
/entries, /dashboard, /review and /settings with the user's session cookie. It prints one
table with each category's score, marks each target PASS or FAIL, and lists what Lighthouse
flagged. A measurement, not a test: it exits 0 either way.

Environment: BENCH_UI_RUNS (Lighthouse runs per page, the median counts; default 1),
BENCH_UI_PAGES (comma-separated names to run only those, e.g. "login,settings"),
CHROME_PATH (default /usr/bin/chromium).
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import httpx

from bench.seed import SENTENCES, TAGS, TITLES
from tests.live_server import PASSWORD, ROOT, LiveServer, free_port

LIGHTHOUSE = ROOT / "node_modules" / ".bin" / "lighthouse"
CHROME = os.environ.get("CHROME_PATH", "/usr/bin/chromium")
CHROME_FLAGS = (
    "--headless=new --no-sandbox --disable-gpu --disable-dev-shm-usage "
    "--disable-background-networking --disable-component-update --disable-sync"
)
RESULTS = ROOT / "bench" / "results" / "lighthouse"
RUNS = max(1, int(os.environ.get("BENCH_UI_RUNS", "1")))
ONLY = {s.strip() for s in os.environ.get("BENCH_UI_PAGES", "").split(",") if s.strip()}
EMAIL = "lighthouse@bench.example"
TRIES = 3  # Lighthouse runs per measurement when it reports a broken trace
DAYS = 90  # of wins: one or two a day, some with money
# (name, path, signed in)
PAGES = [
    ("login", "/login", False),
    ("register", "/register", False),
    ("entries", "/entries", True),
    ("dashboard", "/dashboard", True),
    ("review", "/review", True),
    ("settings", "/settings", True),
]
# Lighthouse category id -> (column title, lowest passing score)
TARGETS = {
    "performance": ("Performance", 90),
    "accessibility": ("Accessibility", 100),
    "best-practices": ("Best Practices", 100),
    "seo": ("SEO", 100),
}
METRICS = {
    "first-contentful-paint": "FCP",
    "largest-contentful-paint": "LCP",
    "total-blocking-time": "TBT",
    "cumulative-layout-shift": "CLS",
    "speed-index": "SI",
}


@dataclass
class Result:
    name: str
    path: str
    scores: dict[str, int] = field(default_factory=dict)
    metrics: dict[str, str] = field(default_factory=dict)
    flagged: list[str] = field(default_factory=list)
    seconds: float = 0.0
    benchmark: int = 0  # Lighthouse's CPU benchmark index of this machine during the run

    def passed(self, category: str) -> bool:
        return self.scores.get(category, -1) >= TARGETS[category][1]


def seed_diary(server: LiveServer) -> None:
    """The user and their wins, through the operator command and the public API."""
    server.create_user(EMAIL)
    headers = {"Authorization": f"Bearer {server.bearer_token(EMAIL)}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=30) as api:
        categories = [c["id"] for c in api.get("/api/v1/categories").json()] or [None]
        today = date.today()
        for i in range(DAYS * 3 // 2):
            money = i % 10 == 0
            response = api.post(
                "/api/v1/entries",
                json={
                    "title": TITLES[i % len(TITLES)],
                    "body": f"{SENTENCES[i % len(SENTENCES)]} {SENTENCES[(i * 7 + 3) % 6]}",
                    "day": (today - timedelta(days=i * 2 // 3)).isoformat(),
                    "category_id": categories[i % len(categories)] if i % 4 else None,
                    "tags": TAGS[i % len(TAGS)].split(),
                    "mood": 1 + i % 5,
                    "amount": "19.99" if money else None,
                    "currency": "USD" if money else None,
                },
            )
            response.raise_for_status()


def session_cookie(server: LiveServer) -> str:
    """The Cookie header of a browser signed in as the user (session and CSRF cookies)."""
    with httpx.Client(base_url=server.url, timeout=30) as client:
        login = client.post(
            "/api/v1/auth/cookie/login", data={"username": EMAIL, "password": PASSWORD}
        )
        login.raise_for_status()
        client.get("/entries").raise_for_status()  # sets the CSRF cookie, as a first visit does
        return "; ".join(f"{k}={v}" for k, v in client.cookies.items())


def lighthouse(url: str, report: Path, cookie: str | None) -> dict:
    command = [
        str(LIGHTHOUSE),
        url,
        "--quiet",
        "--no-enable-error-reporting",
        f"--only-categories={','.join(TARGETS)}",
        f"--chrome-flags={CHROME_FLAGS}",
        "--output=json",
        "--output=html",
        f"--output-path={report}",
    ]
    if cookie:
        command.append(f"--extra-headers={json.dumps({'Cookie': cookie})}")
    for _attempt in range(TRIES):
        done = subprocess.run(
            command,
            cwd=ROOT,
            env={**os.environ, "CHROME_PATH": CHROME},
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )
        # Now and then the trace misses its navigation start (NO_NAVSTART) on a busy machine;
        # Lighthouse itself says to run it again.
        if done.returncode == 0 or "Please run Lighthouse again" not in done.stderr:
            break
    if done.returncode:
        raise RuntimeError(f"lighthouse failed on {url}:\n{done.stderr[-3000:]}")
    return json.loads(report.with_suffix(".report.json").read_text())


def flagged(lhr: dict) -> list[str]:
    """What cost points in the categories under their target, with up to three elements each."""
    lines = []
    for category_id, category in lhr["categories"].items():
        if round(100 * (category["score"] or 0)) >= TARGETS[category_id][1]:
            continue
        for ref in category["auditRefs"]:
            audit = lhr["audits"][ref["id"]]
            score = audit.get("score")
            if not ref["weight"] or score is None or score >= 1:
                continue
            value = f" [{audit['displayValue']}]" if audit.get("displayValue") else ""
            lines.append(f"{category_id}: {ref['id']} ({score:.2f}) {audit['title']}{value}")
            for item in (audit.get("details") or {}).get("items", [])[:3]:
                node = item.get("node") or {}
                where = node.get("selector") or item.get("url") or item.get("source") or ""
                if where:
                    lines.append(f"    {str(where)[:110]}")
    return lines


def measure(base: str, name: str, path: str, cookie: str | None) -> Result:
    started = time.perf_counter()
    runs = []
    for run in range(RUNS):
        report = RESULTS / (name if RUNS == 1 else f"{name}-{run + 1}")
        runs.append(lighthouse(base + path, report, cookie))
    by_score = {
        category: statistics.median_low(
            round(100 * (lhr["categories"][category]["score"] or 0)) for lhr in runs
        )
        for category in TARGETS
    }
    # The run whose performance score is the median one tells the metrics and the findings.
    perf = [round(100 * (lhr["categories"]["performance"]["score"] or 0)) for lhr in runs]
    lhr = runs[perf.index(statistics.median_low(perf))]
    final = lhr.get("finalDisplayedUrl") or lhr.get("finalUrl", "")
    if not final.endswith(path):
        raise RuntimeError(f"{path} ended on {final}: the page was not the one meant")
    return Result(
        name=name,
        path=path,
        scores=by_score,
        metrics={short: lhr["audits"][key]["displayValue"] for key, short in METRICS.items()},
        flagged=flagged(lhr),
        seconds=time.perf_counter() - started,
        benchmark=round(lhr["environment"]["benchmarkIndex"]),
    )


def table(results: list[Result]) -> str:
    head = f"| page | {' | '.join(title for title, _ in TARGETS.values())} | metrics (mobile) |"
    lines = [head, "|---|" + "--:|" * len(TARGETS) + "---|"]
    for r in results:
        cells = [
            f"{r.scores[c]} {'PASS' if r.passed(c) else 'FAIL'}" for c in TARGETS
        ]  # fmt: skip
        metrics = ", ".join(f"{k} {v}" for k, v in r.metrics.items())
        lines.append(f"| {r.path} | {' | '.join(cells)} | {metrics} |")
    targets = ", ".join(f"{title} >= {low}" for title, low in TARGETS.values())
    return "\n".join(lines) + f"\n\ntargets: {targets}"


def main() -> None:
    if not LIGHTHOUSE.exists():
        sys.exit("node_modules/.bin/lighthouse is missing: run `npm ci`, then make bench-ui again")
    if not Path(CHROME).exists():
        sys.exit(f"{CHROME} is missing: `apt-get install chromium` or set CHROME_PATH")
    version = subprocess.run(
        [str(LIGHTHOUSE), "--version"], capture_output=True, text=True, check=True
    ).stdout.strip()
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    print(f"SuccessDiary bench-ui: commit {commit or '?'}, Lighthouse {version}, {CHROME}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/ui.sqlite3"
        with LiveServer(database_url=url, smtp_port=free_port(), LOG_FORMAT="json") as server:
            seed_diary(server)
            cookie = session_cookie(server)
            print(f"seeded {EMAIL} with {DAYS * 3 // 2} wins over {DAYS} days; {RUNS} run(s)")
            for name, path, signed_in in PAGES:
                if ONLY and name not in ONLY:
                    continue
                result = measure(server.url, name, path, cookie if signed_in else None)
                results.append(result)
                scores = "  ".join(f"{c} {result.scores[c]}" for c in TARGETS)
                print(
                    f"  {path:12} {scores}  ({result.seconds:.0f} s, CPU index {result.benchmark})",
                    flush=True,
                )
    report = table(results)
    if results:
        indexes = sorted(r.benchmark for r in results)
        report += (
            f"\nLighthouse's CPU benchmark index here: {indexes[0]} to {indexes[-1]} (under 1,000 "
            "Lighthouse warns that the CPU is slower than its 4x slowdown assumes, so blocking "
            "time and the Performance score come out worse than on a real mid-range phone)"
        )
    findings = [f"{r.path}: {line}" for r in results for line in r.flagged]
    if findings:
        report += "\n\nwhat Lighthouse flagged:\n" + "\n".join(f"  {f}" for f in findings)
    (RESULTS / "results.md").write_text(
        f"commit {commit or '?'}, Lighthouse {version}\n\n{report}\n"
    )
    print(f"\n{report}\n\nreports (HTML and JSON) in {RESULTS.relative_to(ROOT)}/")


if __name__ == "__main__":
    main()
