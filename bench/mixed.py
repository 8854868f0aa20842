"""The "day in the life" scenario: many users, each in a loop, do what a diary's user does.

Each user (a browser session of one of the seeded users) opens the list, adds a win
(HTMX quick-add), opens the list again, the dashboard, searches a word and edits the win
just added, for `seconds`. Every request after the first write is a first view after a
change, so this is where a cache keyed by the diary's version has to earn its keep.
Returns req/s over all steps and p50/p95/p99 per step.
"""

import asyncio
import re
import time
from dataclasses import dataclass, field
from datetime import date
from urllib.parse import urlencode

import httpx

from bench.seed import COMMON
from tests.live_server import PASSWORD

BROWSER = {"Accept": "text/html", "Accept-Encoding": "gzip, br", "Sec-Fetch-Site": "same-origin"}
STEPS = ("list", "add", "list-after", "dashboard", "search", "edit")


@dataclass
class MixedResult:
    users: int
    seconds: float
    loops: int = 0
    errors: int = 0
    requests: int = 0
    steps: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def _percentile(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def _sign_in(base: str, email: str) -> httpx.AsyncClient:
    client = httpx.AsyncClient(base_url=base, timeout=60, headers=BROWSER)
    login = await client.post(
        "/api/v1/auth/cookie/login", data={"username": email, "password": PASSWORD}
    )
    login.raise_for_status()
    (await client.get("/entries")).raise_for_status()  # the CSRF cookie
    return client


async def _get(client: httpx.AsyncClient, path: str) -> httpx.Response:
    """A GET, sent again once when the server had just closed the idle connection it went on
    (its keep-alive is 5 s, and the 64 sign-ins take longer), as a browser does."""
    try:
        return await client.get(path)
    except httpx.RemoteProtocolError:
        return await client.get(path)


async def _user(
    client: httpx.AsyncClient,
    email: str,
    deadline: float,
    times: dict[str, list[float]],
    result: MixedResult,
) -> None:
    base = str(client.base_url).rstrip("/")
    csrf = client.cookies["csrftoken"]
    post = {"Origin": base, "x-csrftoken": csrf, "HX-Request": "true"}
    n = 0
    while time.monotonic() < deadline:
        n += 1
        steps: list[tuple[str, str, str, dict[str, str] | None]] = [
            ("list", "GET", "/entries", None),
            (
                "add",
                "POST",
                "/entries",
                {
                    "day": date.today().isoformat(),
                    "title": f"Win {n} of {email}",
                    "body": f"Made real {COMMON} on the long project.",
                    "mood": "4",
                    "tags": "bench",
                    "csrftoken": csrf,
                },
            ),
            ("list-after", "GET", "/entries", None),
            ("dashboard", "GET", "/dashboard", None),
            ("search", "GET", f"/entries?q={COMMON}", None),
        ]
        created: int | None = None
        for name, method, path, form in steps:
            started = time.perf_counter()
            if method == "GET":
                response = await _get(client, path)
            else:
                response = await client.post(
                    path,
                    content=urlencode(form or {}),
                    headers={
                        **post,
                        "HX-Target": "entries",
                        "Content-Type": "application/x-www-form-urlencoded",
                    },
                )
                found = re.search(r'id="entry-(\d+)"', response.text)
                created = int(found.group(1)) if found else None
            times[name].append((time.perf_counter() - started) * 1000)
            result.requests += 1
            if response.status_code >= 400:
                result.errors += 1
        if created is not None:
            started = time.perf_counter()
            response = await client.post(
                f"/entries/{created}",
                content=urlencode({"title": f"Win {n} of {email}, edited", "csrftoken": csrf}),
                headers={
                    **post,
                    "HX-Target": f"entry-{created}",
                    "Content-Type": "application/x-www-form-urlencoded",
                },
            )
            times["edit"].append((time.perf_counter() - started) * 1000)
            result.requests += 1
            result.errors += response.status_code >= 400
        result.loops += 1


async def _mixed(base: str, users: int, seconds: float) -> MixedResult:
    result = MixedResult(users=users, seconds=seconds)
    times: dict[str, list[float]] = {step: [] for step in STEPS}
    emails = [f"user{i}@bench.example" for i in range(1, users + 1)]
    # The sign-ins (argon2) come first and are not measured, a few at a time: one address may
    # have at most 20 unfinished sign-ins (app.ratelimit, AUTH_FAILURES_PER_IP).
    turns = asyncio.Semaphore(8)

    async def signed_in(email: str) -> httpx.AsyncClient:
        async with turns:
            return await _sign_in(base, email)

    clients = await asyncio.gather(*(signed_in(e) for e in emails))
    started = time.monotonic()
    deadline = started + seconds
    try:
        await asyncio.gather(
            *(_user(c, e, deadline, times, result) for c, e in zip(clients, emails, strict=True))
        )
    finally:
        result.seconds = time.monotonic() - started
        for client in clients:
            await client.aclose()
    result.steps = {
        step: {
            "n": len(values),
            "p50": _percentile(values, 50),
            "p95": _percentile(values, 95),
            "p99": _percentile(values, 99),
        }
        for step, values in times.items()
    }
    return result


def mixed(base: str, users: int, seconds: float) -> MixedResult:
    return asyncio.run(_mixed(base, users, seconds))
