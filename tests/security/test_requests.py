"""SECURITY.md rows 8-11, 15, 19 and 21: what every request and response must obey."""

import gc
import re
import tracemalloc
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from sqlalchemy import func, select
from starlette.routing import Route

from app.db import dispose
from app.main import create_app
from app.models import Entry, User
from tests.conftest import make_settings, settle
from tests.factories import PASSWORD, csrf_token, post_form, sign_in

PUBLIC_PAGES = ["/", "/register", "/verify", "/login", "/forgot-password", "/reset-password"]
PRIVATE_PAGES = ["/settings"]


def all_routes(app: FastAPI) -> set[tuple[str, str]]:
    """Every (method, path) the running app answers, whoever added it and with what prefix."""
    return {
        (method, str(context.path))
        for context in iter_route_contexts(app.routes)
        if isinstance(context.original_route, Route)  # not the /static mount
        for method in (getattr(context.original_route, "methods", None) or set()) - {"HEAD"}
    }


PUBLIC_ALLOW_LIST = {
    ("GET", "/"),
    ("GET", "/healthz"),
    ("GET", "/manifest.webmanifest"),  # browsers fetch it without cookies; no user data in it
    ("GET", "/metrics"),  # Prometheus: METRICS_TOKEN guards it in production, not a session
    ("GET", "/openapi.json"),
    ("GET", "/docs"),
    ("GET", "/redoc"),
    # The development outbox: no route in production, 404 to any client but this machine
    # (tests/test_first_run.py).
    ("GET", "/dev/mail"),
    ("GET", "/dev/mail/{mail_id}.html"),
    ("GET", "/register"),
    ("POST", "/register"),
    ("GET", "/verify"),
    ("POST", "/verify"),
    ("GET", "/verify/status"),
    ("POST", "/verify/resend"),
    ("GET", "/login"),
    ("POST", "/login"),
    ("GET", "/forgot-password"),
    ("POST", "/forgot-password"),
    ("GET", "/reset-password"),
    ("POST", "/reset-password"),
    ("POST", "/logout"),
    # Two-step sign-in comes before a session: the second step is bound to a pending sign-in
    # (its own cookie, tests/security/test_second_factor.py), a passkey signs in by itself.
    ("GET", "/login/second-step"),
    ("POST", "/login/second-step"),
    ("POST", "/login/passkey/options"),
    ("POST", "/login/passkey"),
    # One-click unsubscribe (RFC 8058): the signed single-purpose token is the credential.
    ("GET", "/unsubscribe/{token}"),
    ("POST", "/unsubscribe/{token}"),
    ("POST", "/api/v1/auth/register"),
    ("POST", "/api/v1/auth/request-code"),
    ("POST", "/api/v1/auth/verify"),
    ("POST", "/api/v1/auth/cookie/login"),
    ("POST", "/api/v1/auth/bearer/login"),
    ("POST", "/api/v1/auth/forgot-password"),
    ("POST", "/api/v1/auth/reset-password"),
}


async def test_row8_every_route_outside_the_allow_list_needs_a_session(app, client):
    routes = all_routes(app)
    assert routes >= PUBLIC_ALLOW_LIST, f"allow-listed but gone: {PUBLIC_ALLOW_LIST - routes}"
    checked = 0
    for method, path in sorted(routes - PUBLIC_ALLOW_LIST):
        url = re.sub(r"\{[^}]+\}", "00000000-0000-0000-0000-000000000000", path)
        token = await csrf_token(client)
        response = await client.request(method, url, headers={"x-csrftoken": token})
        if path.startswith("/api/"):
            assert response.status_code == 401, (method, path)
        else:
            assert response.status_code == 303, (method, path)
            assert response.headers["location"].startswith("/login?next="), (method, path)
        checked += 1
    assert checked >= 40, checked


async def test_row9_user_update_ignores_privileged_fields(client, alice, session):
    await sign_in(client, "alice@example.com")
    token = await csrf_token(client)
    response = await client.patch(
        "/api/v1/users/me",
        json={
            "current_password": "wrong",
            "password": "x",
            "is_superuser": True,
            "is_verified": False,
            "id": "00000000-0000-0000-0000-000000000000",
            "user_id": 1,
        },
        headers={"x-csrftoken": token},
    )
    assert response.status_code == 422
    await session.refresh(alice)
    assert (alice.is_superuser, alice.is_verified) == (False, True)


@pytest.mark.parametrize("origin", ["https://evil.example", "null"])
async def test_row10_a_foreign_or_null_origin_is_refused_and_writes_nothing(
    client, app, session, origin
):
    response = await post_form(
        client,
        "/register",
        {"email": "csrf@example.com", "password": PASSWORD},
        headers={"Origin": origin},
    )
    await settle(app)
    assert response.status_code == 403
    assert (await session.execute(select(func.count()).select_from(User))).scalar_one() == 0


@pytest.mark.parametrize("path", ["/login", "/register", "/forgot-password", "/verify"])
@pytest.mark.parametrize("token", [None, "forged-token"])
async def test_row10_forms_without_the_right_token_are_refused(client, path, token):
    await csrf_token(client)
    data = {"email": "alice@example.com", "password": PASSWORD}
    if token:
        data["csrftoken"] = token
    response = await client.post(path, data=data, headers={"Accept": "text/html"})
    assert response.status_code == 403
    assert "This form has expired" in response.text


async def test_row10_forms_are_protected_even_before_any_cookie(client):
    response = await client.post("/login", data={"email": "a@example.com", "password": "x"})
    assert response.status_code == 403
    assert response.json()["detail"] == "CSRF_FAILED"


async def test_row10_a_signed_in_json_request_needs_the_token_header(client, alice):
    await sign_in(client, "alice@example.com")
    body = {"current_password": PASSWORD, "password": "new long phrase here"}
    refused = await client.patch("/api/v1/users/me", json=body)
    assert refused.status_code == 403
    assert (await client.get("/api/v1/users/me")).status_code == 200, "the session is intact"


async def test_row10_htmx_requests_carry_the_token_in_a_header(client, alice):
    token = await csrf_token(client)
    response = await client.post(
        "/login",
        data={"email": "alice@example.com", "password": PASSWORD},
        headers={"HX-Request": "true", "x-csrftoken": token, "Origin": "http://testserver"},
    )
    assert response.status_code == 200
    assert response.headers["hx-redirect"] == "/"


async def test_row10_every_page_form_carries_the_token(client, alice):
    for path in PUBLIC_PAGES:
        html = (await client.get(path)).text
        assert html.count("<form") == html.count('name="csrftoken"'), path
        assert '"x-csrftoken"' in html, path


async def test_row11_json_sent_as_text_plain_does_not_write(client, app, alice, session):
    await sign_in(client, "alice@example.com")
    response = await client.patch(
        "/api/v1/users/me",
        content=b'{"current_password": "correct horse battery staple", "password": "new long phrase here"}',
        headers={"Content-Type": "text/plain", "x-csrftoken": await csrf_token(client)},
    )
    assert response.status_code in (415, 422)
    client.cookies.clear()
    await sign_in(client, "alice@example.com")


@pytest.mark.parametrize("path", PUBLIC_PAGES + PRIVATE_PAGES + ["/no-such-page"])
async def test_row15_html_responses_carry_the_security_headers(client, alice, path):
    await sign_in(client, "alice@example.com")
    response = await client.get(path, headers={"Accept": "text/html"}, follow_redirects=True)
    assert response.headers["content-type"].startswith("text/html")
    csp = response.headers["content-security-policy"]
    for directive in [
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
        "script-src 'self'",
    ]:
        assert directive in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "same-origin"
    assert response.headers["cache-control"] == "no-store"
    assert "strict-transport-security" not in response.headers, (
        "no HSTS over plain http in development"
    )


async def test_row15_production_sends_hsts_for_a_year(db_url, mailbox):
    settings = make_settings(
        db_url,
        mailbox.port,
        environment="production",
        base_url="https://diary.example",
        cookie_secure=None,
    )
    app = create_app(settings)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="https://diary.example"
    ) as c:
        response = await c.get("/login")
    assert response.headers["strict-transport-security"].startswith("max-age=31536000")
    await dispose(app.state.engine)


TEN_MB = 10_000_000


async def chunks(total: int, size: int = 64_000) -> AsyncIterator[bytes]:
    """A body sent without Content-Length, as a stream of chunks."""
    for _ in range(total // size):
        yield b"x" * size


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
async def test_row19_a_10_mb_body_gets_413_with_a_clear_message(client, app, session, declared):
    body = b"x" * TEN_MB if declared else chunks(TEN_MB)
    api = await client.post(
        "/api/v1/auth/register", content=body, headers={"Content-Type": "application/json"}
    )
    assert api.status_code == 413
    assert api.json() == {
        "detail": "REQUEST_TOO_LARGE",
        "message": "The request is larger than 1,000 kB.",
    }
    page = await client.post(
        "/register",
        content=b"x" * TEN_MB if declared else chunks(TEN_MB),
        headers={"Content-Type": "application/x-www-form-urlencoded", "Accept": "text/html"},
    )
    assert page.status_code == 413
    assert "The request is larger than 1,000 kB." in page.text
    await settle(app)
    assert (await session.execute(select(func.count()).select_from(User))).scalar_one() == 0


def many_fields(n: int, token: str) -> dict[str, str]:
    return {"csrftoken": token, "title": "Too many", **{f"field{i}": "x" for i in range(n)}}


async def test_row19_a_form_with_over_1000_fields_gets_413_with_a_clear_message(
    client, alice, session
):
    api = await client.post(
        "/api/v1/auth/bearer/login",
        data={"username": "alice@example.com", "password": PASSWORD, **many_fields(1000, "")},
    )
    assert api.status_code == 413
    assert api.json() == {
        "detail": "REQUEST_TOO_LARGE",
        "message": "Too many fields. Maximum number of fields is 1000.",
    }
    await sign_in(client, "alice@example.com")
    token = await csrf_token(client)
    page = await post_form(
        client, "/entries", many_fields(1000, token), headers={"Accept": "text/html"}
    )
    assert page.status_code == 413
    assert "Too many fields. Maximum number of fields is 1000." in page.text
    assert (await session.execute(select(func.count()).select_from(Entry))).scalar_one() == 0
    fine = await post_form(client, "/entries", many_fields(900, token))
    assert fine.status_code == 303, "a form under the limit is read (extra fields ignored)"


async def test_row19_an_entry_of_100_001_characters_gets_422_and_writes_nothing(
    client, alice, session
):
    await sign_in(client, "alice@example.com")
    token = await csrf_token(client)
    too_long = "x" * 100_001
    message = "Use at most 100,000 characters for the text (100,001 now)."
    api = await client.post(
        "/api/v1/entries", json={"title": "Long", "body": too_long}, headers={"x-csrftoken": token}
    )
    assert api.status_code == 422
    assert message in api.json()["detail"][0]["msg"]
    page = await post_form(
        client, "/entries", {"title": "Long", "body": too_long}, headers={"Accept": "text/html"}
    )
    assert page.status_code == 422 and message in page.text
    assert (await session.execute(select(func.count()).select_from(Entry))).scalar_one() == 0
    exact = await client.post(
        "/api/v1/entries",
        json={"title": "Long", "body": "x" * 100_000},
        headers={"x-csrftoken": token},
    )
    assert exact.status_code == 201, "100,000 characters is still fine"


async def test_row19_memory_stays_steady_under_repeated_oversized_requests(client, alice):
    """The refused bodies are never buffered: peak memory does not grow with the repeats."""
    await sign_in(client, "alice@example.com")
    token = await csrf_token(client)
    fields = many_fields(1000, token)
    long_entry = {"title": "Long", "body": "x" * 100_001}

    async def oversized() -> None:
        sizes = [
            await client.post(
                "/api/v1/entries",
                content=chunks(TEN_MB),
                headers={"Content-Type": "application/json", "x-csrftoken": token},
            ),
            await post_form(client, "/entries", fields),
            await client.post("/api/v1/entries", json=long_entry, headers={"x-csrftoken": token}),
        ]
        assert [r.status_code for r in sizes] == [413, 413, 422]

    await oversized()  # warm up: imports, caches, the first compiled templates
    peaks, kept = [], []
    tracemalloc.start()
    try:
        for _ in range(8):
            gc.collect()
            before = tracemalloc.get_traced_memory()[0]
            tracemalloc.reset_peak()
            await oversized()
            peaks.append(tracemalloc.get_traced_memory()[1] - before)
            gc.collect()
            kept.append(tracemalloc.get_traced_memory()[0] - before)
    finally:
        tracemalloc.stop()
    assert max(peaks) < 3_000_000, f"a 10 MB body was buffered: peaks {peaks}"
    assert max(peaks[4:]) < 1.5 * max(peaks[:4]) + 200_000, f"peaks grow: {peaks}"
    assert sum(kept[4:]) < 500_000, f"memory kept per round: {kept}"


async def test_row21_a_crash_shows_a_generic_page_with_a_request_id(db_url, mailbox):
    app = create_app(make_settings(db_url, mailbox.port))

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internals")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        page = await c.get("/boom", headers={"Accept": "text/html"})
        api = await c.get("/boom")
    await dispose(app.state.engine)
    assert page.status_code == api.status_code == 500
    request_id = page.headers["x-request-id"]
    assert request_id and request_id in page.text
    assert "Something went wrong" in page.text
    assert api.json() == {"detail": "INTERNAL_ERROR", "request_id": api.headers["x-request-id"]}
    for body in (page.text, api.text):
        assert "secret internals" not in body and "Traceback" not in body


async def test_row21_docs_can_be_turned_off(db_url, mailbox):
    app = create_app(make_settings(db_url, mailbox.port, docs_enabled=False))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as c:
        assert (await c.get("/openapi.json")).status_code == 404
        assert (await c.get("/docs")).status_code == 404
    await dispose(app.state.engine)
