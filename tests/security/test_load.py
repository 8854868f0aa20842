"""SECURITY.md row 28: 1,000 concurrent connections on the list page, with writes going in.

One worker, as in production (README: gunicorn -w 1 per core is the advice, one is enough here).
"""

import asyncio
import resource
import time
from collections import Counter
from pathlib import Path

import httpx

from tests.conftest import Mailbox
from tests.live_server import PASSWORD, LiveServer, fresh_database

READERS = 1000
WRITES = 50
# Each request may queue behind the whole burst on one worker: this catches a hang, it is not a
# speed target (those live in bench/, where 1,000 connections are measured).
TIMEOUT = 180
HTML = {"Accept": "text/html"}


def allow_open_files(count: int) -> None:
    """Each connection is a file descriptor on both ends (here: the test and the server)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < count:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(count, hard), hard))


async def signed_in_browser(url: str) -> httpx.Cookies:
    async with httpx.AsyncClient(base_url=url) as client:
        response = await client.post(
            "/api/v1/auth/cookie/login",
            data={"username": "alice@example.com", "password": PASSWORD},
        )
        assert response.status_code == 204, response.text
        return client.cookies


async def stored_ids(client: httpx.AsyncClient) -> set[int]:
    """Every entry id the API lists for alice, page by page."""
    ids: set[int] = set()
    params: dict[str, str] = {}
    while True:
        page = (await client.get("/api/v1/entries", params=params)).json()
        ids |= {item["id"] for item in page["items"]}
        if not page["next_cursor"]:
            return ids
        params = {"cursor": page["next_cursor"]}


async def test_row28_1000_concurrent_connections_on_the_list_page_give_0_errors_and_lose_0_writes(
    db_url: str, mailbox: Mailbox, tmp_path: Path
):
    allow_open_files(4 * READERS)
    with (
        fresh_database(db_url, tmp_path) as url,
        LiveServer(database_url=url, smtp_port=mailbox.port) as server,
    ):
        server.create_user("alice@example.com")
        token = server.bearer_token("alice@example.com")
        cookies = await signed_in_browser(server.url)
        limits = httpx.Limits(max_connections=READERS + WRITES, max_keepalive_connections=0)
        async with (
            httpx.AsyncClient(
                base_url=server.url, cookies=cookies, headers=HTML, limits=limits, timeout=TIMEOUT
            ) as browser,
            httpx.AsyncClient(
                base_url=server.url,
                headers={"Authorization": f"Bearer {token}"},
                limits=limits,
                timeout=TIMEOUT,
            ) as script,
        ):
            started = time.monotonic()
            answers = await asyncio.gather(
                *(browser.get("/entries") for _ in range(READERS)),
                *(
                    script.post("/api/v1/entries", json={"title": f"win {n}"})
                    for n in range(WRITES)
                ),
                return_exceptions=True,
            )
            seconds = time.monotonic() - started
            stored = await stored_ids(script)

    pages, writes = answers[:READERS], answers[READERS:]
    outcome = Counter(
        a.status_code if isinstance(a, httpx.Response) else type(a).__name__ for a in answers
    )
    assert outcome == Counter({200: READERS, 201: WRITES}), f"{outcome} in {seconds:.1f} s"
    assert all("Your wins" in page.text for page in pages if isinstance(page, httpx.Response))
    written = {w.json()["id"] for w in writes if isinstance(w, httpx.Response)}
    assert len(written) == WRITES
    assert written <= stored, f"{len(written - stored)} acknowledged writes are missing"
