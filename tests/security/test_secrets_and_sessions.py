"""SECURITY.md rows 4, 6, 14 and 20: codes never leak, answers do not tell who is registered,
cookies carry the right flags, passwords are stored with argon2id."""

import json
import logging
import os
import statistics
import subprocess
import sys
import time

import httpx
import pytest

from app.auth import password_helper, password_problem
from app.main import create_app
from tests.conftest import Mailbox, make_settings, settle
from tests.factories import PASSWORD, post_form


async def test_row4_codes_come_from_secrets_and_are_never_logged_in_production(
    app, db_url, mailbox: Mailbox, caplog, monkeypatch
):
    import app.services.accounts as accounts

    drawn: list[int] = []
    real = accounts.secrets.randbelow
    monkeypatch.setattr(accounts.secrets, "randbelow", lambda n: drawn.append(n) or real(n))
    settings = make_settings(db_url, mailbox.port, environment="production", cookie_secure=True)
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            with caplog.at_level(logging.DEBUG):
                await client.post(
                    "/api/v1/auth/register", json={"email": "lo@example.com", "password": PASSWORD}
                )
                await settle(application)
        code = mailbox.code_for("lo@example.com")
    assert drawn == [1_000_000]
    ours = [r.getMessage() for r in caplog.records if not r.name.startswith("mail.log")]  # aiosmtpd
    assert ours, "the app's own log lines were captured"
    assert not [line for line in ours if code in line]


async def test_row4_in_development_the_code_is_logged_so_nobody_is_stuck(
    client, app, caplog, mailbox
):
    with caplog.at_level(logging.WARNING, logger="app.accounts"):
        await client.post(
            "/api/v1/auth/register", json={"email": "dev@example.com", "password": PASSWORD}
        )
        await settle(app)
    assert mailbox.code_for("dev@example.com") in caplog.text


async def median_ms(client: httpx.AsyncClient, app, request) -> float:  # type: ignore[no-untyped-def]
    """Median answer time; the mail of one call is sent before the next call starts."""
    times = []
    for _ in range(50):
        start = time.perf_counter()
        response = await request()
        times.append((time.perf_counter() - start) * 1000)
        assert response.status_code < 500
        await settle(app)
    return statistics.median(times)


ENDPOINTS = {
    "register": lambda c, email: c.post(
        "/api/v1/auth/register", json={"email": email, "password": PASSWORD}
    ),
    "request-code": lambda c, email: c.post("/api/v1/auth/request-code", json={"email": email}),
    "forgot-password": lambda c, email: c.post(
        "/api/v1/auth/forgot-password", json={"email": email}
    ),
    "login": lambda c, email: c.post(
        "/api/v1/auth/bearer/login", data={"username": email, "password": "not it"}
    ),
}


@pytest.mark.parametrize("name", list(ENDPOINTS))
async def test_row6_answers_look_and_take_the_same_for_real_and_unknown_emails(
    client, app, session, name
):
    from tests.factories import make_user

    await make_user(session, "real@example.com")
    await make_user(session, "pending@example.com", is_verified=False)
    send = ENDPOINTS[name]
    bodies = {
        email: (await send(client, email))
        for email in ("real@example.com", "pending@example.com", "nobody@example.com")
    }
    assert len({(r.status_code, r.text) for r in bodies.values()}) == 1, bodies
    await app.state.limiter.reset()

    real = await median_ms(client, app, lambda: send(client, "real@example.com"))
    await app.state.limiter.reset()
    unknown = await median_ms(client, app, lambda: send(client, "nobody@example.com"))
    await app.state.limiter.reset()

    assert abs(real - unknown) < 20, f"{name}: real {real:.1f} ms, unknown {unknown:.1f} ms"


async def test_row6_the_register_page_answers_the_same_for_a_taken_email(client, app, alice):
    taken = await post_form(
        client, "/register", {"email": "alice@example.com", "password": PASSWORD}
    )
    free = await post_form(
        client, "/register", {"email": "fresh@example.com", "password": PASSWORD}
    )
    assert taken.status_code == free.status_code == 303
    assert taken.headers["location"].replace("alice", "X") == free.headers["location"].replace(
        "fresh", "X"
    )


def test_row14_cookies_in_development_are_httponly_and_lax(tmp_path):
    cookies = _cookies_from_subprocess(
        tmp_path, {"ENVIRONMENT": "development", "BASE_URL": "http://localhost:8000"}
    )
    session = cookies["sd_session"]
    assert "HttpOnly" in session and "SameSite=lax" in session.replace("Lax", "lax")
    assert "Secure" not in session
    assert "SameSite=Lax" in cookies["csrftoken"]


def test_row14_cookies_in_production_are_secure_with_the_host_prefix(tmp_path):
    cookies = _cookies_from_subprocess(
        tmp_path,
        {"ENVIRONMENT": "production", "BASE_URL": "https://diary.example", "SECRET_KEY": "s" * 48},
    )
    session = cookies["__Host-sd_session"]
    for flag in ("HttpOnly", "Secure", "Path=/"):
        assert flag in session
    assert "Domain" not in session
    assert "Secure" in cookies["__Host-csrftoken"]


def test_row14_production_refuses_to_start_with_insecure_settings():
    for env in (
        {"SECRET_KEY": ""},
        {"SECRET_KEY": "change-me"},
        {"SECRET_KEY": "s" * 48, "COOKIE_SECURE": "false"},
    ):
        result = subprocess.run(
            [sys.executable, "-c", "import app.config"],
            env={**os.environ, "ENVIRONMENT": "production", **env},
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode != 0
        assert "SECRET_KEY" in result.stderr or "COOKIE_SECURE" in result.stderr


def _cookies_from_subprocess(tmp_path, env: dict[str, str]) -> dict[str, str]:
    """Cookie rules are fixed when the process starts, so check them in a fresh process."""
    script = f"""
import asyncio, json, httpx
from app.main import create_app
from app.config import settings
from app.models import metadata
from app.auth import password_helper
from app.models import User

async def main():
    settings.database_url = "sqlite+aiosqlite:///{tmp_path}/c.sqlite3"
    app = create_app(settings)
    async with app.state.sessionmaker() as s:
        await s.run_sync(lambda sync: metadata.create_all(sync.connection()))
        s.add(User(email="c@example.com", hashed_password=password_helper.hash("{PASSWORD}"), is_verified=True))
        await s.commit()
    origin = settings.origin
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=origin) as c:
        page = await c.get("/login")
        token = next(v for k, v in c.cookies.items() if k.endswith("csrftoken"))
        r = await c.post("/login", data={{"csrftoken": token, "email": "c@example.com", "password": "{PASSWORD}"}},
                         headers={{"Origin": origin}})
    found = {{}}
    for header in page.headers.get_list("set-cookie") + r.headers.get_list("set-cookie"):
        found[header.split("=", 1)[0]] = header
    print(json.dumps(found))

asyncio.run(main())
"""
    env = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "COOKIE_SECURE")} | env
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_row20_passwords_are_hashed_with_argon2id_at_owasp_strength():
    stored = password_helper.hash(PASSWORD)
    assert stored.startswith("$argon2id$")
    params = dict(p.split("=") for p in stored.split("$")[3].split(","))
    assert int(params["m"]) >= 19 * 1024 and int(params["t"]) >= 2


@pytest.mark.parametrize(
    ("password", "ok"),
    [
        ("short1!", False),
        ("password123", False),
        ("qwertyuiop", False),
        ("x" * 129, False),
        ("correct horse battery staple", True),
        ("wren-orbit-velvet-92" + "z" * 44, True),
    ],
)
def test_row20_length_and_common_passwords(password, ok):
    assert (password_problem(password) is None) is ok
