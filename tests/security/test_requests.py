"""SECURITY.md rows 8-11, 15, 17, 19 (size) and 21: what every request and response must obey."""

import re

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from sqlalchemy import func, select
from starlette.routing import Route

from app.main import create_app
from app.models import User
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
    ("GET", "/metrics"),  # Prometheus: METRICS_TOKEN guards it in production, not a session
    ("GET", "/openapi.json"),
    ("GET", "/docs"),
    ("GET", "/redoc"),
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
    await app.state.engine.dispose()


XSS_EMAIL = '"<script>alert(1)</script>"@example.com'


async def test_row17_markup_in_the_email_field_is_inert(client, app, mailbox):
    for email in [
        XSS_EMAIL,
        "<img src=x onerror=alert(1)>@example.com",
        'a" hx-get="/x"@example.com',
    ]:
        page = await post_form(client, "/register", {"email": email, "password": PASSWORD})
        assert page.status_code == 422
        assert "<script>alert" not in page.text and "<img src=x" not in page.text
        assert 'hx-get="/x"' not in page.text
        api = await client.post(
            "/api/v1/auth/register",
            json={"email": email, "password": PASSWORD},
            headers={"x-csrftoken": await csrf_token(client)},
        )
        assert api.status_code == 422
    verify = await client.get("/verify", params={"email": "<script>alert(1)</script>"})
    assert "<script>alert(1)" not in verify.text
    await settle(app)
    assert mailbox.messages == []


async def test_row19_a_body_over_the_limit_gets_413(client):
    response = await client.post(
        "/api/v1/auth/register",
        content=b"x" * 2_000_000,
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json()["detail"] == "REQUEST_TOO_LARGE"


async def test_row21_a_crash_shows_a_generic_page_with_a_request_id(db_url, mailbox):
    app = create_app(make_settings(db_url, mailbox.port))

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internals")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        page = await c.get("/boom", headers={"Accept": "text/html"})
        api = await c.get("/boom")
    await app.state.engine.dispose()
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
    await app.state.engine.dispose()
