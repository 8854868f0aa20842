"""The first minute on a fresh clone: forms from any loopback address in development, the
development outbox at /dev/mail, one clear message when no mail server answers, and the
browser's time zone at sign-up."""

import contextlib
import re
from collections.abc import AsyncIterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from app import mail
from app.config import Settings
from app.main import create_app
from app.models import User
from tests.conftest import Mailbox, mail_down, settle
from tests.factories import PASSWORD, make_user, post_form, sign_in

HTMX = {"HX-Request": "true"}
SECRET = "first-run-test-secret-key-0123456789-abcdefghij"
LOOPBACK_NAMES = ["localhost", "127.0.0.1", "[::1]"]
ANOTHER_SITE = "This request came from another site."
PRINTED = "http://127.0.0.1:8000"  # the address uvicorn prints


def fresh_settings(db_url: str, smtp_port: int, **overrides: Any) -> Settings:
    """Settings as a newcomer has them: no BASE_URL (the caller removed it from the env)."""
    values: dict[str, Any] = {
        "environment": "development",
        "database_url": db_url,
        "secret_key": SECRET,
        "smtp_port": smtp_port,
        "smtp_timeout": 3.0,
        "redis_url": None,
        **overrides,
    }
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def no_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BASE_URL", raising=False)


@contextlib.asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@contextlib.asynccontextmanager
async def browser_at(
    application: FastAPI, origin: str, client_ip: str = "127.0.0.1"
) -> AsyncIterator[httpx.AsyncClient]:
    """A client on `origin` (http://host:port), as a browser on this machine would be."""
    transport = httpx.ASGITransport(app=application, client=(client_ip, 51000))
    async with httpx.AsyncClient(transport=transport, base_url=origin) as client:
        yield client


async def post_from(
    client: httpx.AsyncClient, url: str, data: dict[str, str], origin: str
) -> httpx.Response:
    """A page form posted with the page's CSRF token and the given Origin."""
    page = await client.get("/register")
    token = re.search(r'name="csrftoken" value="([^"]+)"', page.text)
    assert token, "the page carries a CSRF token"
    form = {"csrftoken": token.group(1), **data}
    return await client.post(url, data=form, headers={"Origin": origin, "Accept": "text/html"})


@pytest.fixture
def outbox(app: FastAPI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The test app's outbox, empty for this test."""
    folder = tmp_path / "dev-mail"
    monkeypatch.setattr(app.state.settings, "dev_mail_dir", folder)
    return folder


@pytest.fixture
async def here(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A browser on the machine that runs the app (a loopback client)."""
    async with browser_at(app, "http://testserver") as client:
        yield client


# Item 1: loopback origins in development ----------------------------------------------------


@pytest.mark.parametrize("host", LOOPBACK_NAMES)
async def test_each_loopback_name_of_the_served_port_signs_up_and_in_without_base_url(
    app, db_url, mailbox: Mailbox, session, no_base_url, host
):
    await make_user(session, "alice@example.com")
    await session.commit()
    origin = f"http://{host}:8000"
    async with serving(fresh_settings(db_url, mailbox.port)) as dev, browser_at(dev, origin) as c:
        registered = await post_from(
            c, "/register", {"email": "new@example.com", "password": PASSWORD}, origin
        )
        assert registered.status_code == 303, registered.text
        assert registered.headers["location"] == "/verify?email=new%40example.com"

        signed_in = await post_from(
            c, "/login", {"email": "alice@example.com", "password": PASSWORD}, origin
        )
        assert signed_in.status_code == 303, signed_in.text
        assert "secure" not in signed_in.headers["set-cookie"].lower(), "plain http on loopback"
        settings_page = await c.get("/settings")
        assert settings_page.status_code == 200, "the session cookie works on this host"
        assert "alice@example.com" in settings_page.text


@pytest.mark.parametrize(
    "origin",
    [
        "http://localhost:8001",  # another port: another app
        "http://127.0.0.2:8000",
        "https://localhost:8000",
        "http://localhost.evil.example:8000",
        "http://evil.example:8000",
        "null",
    ],
)
async def test_development_without_base_url_refuses_any_other_origin(
    app, db_url, mailbox: Mailbox, no_base_url, origin
):
    async with (
        serving(fresh_settings(db_url, mailbox.port)) as dev,
        browser_at(dev, PRINTED) as c,
    ):
        refused = await post_from(
            c, "/register", {"email": "new@example.com", "password": PASSWORD}, origin
        )
        own = await post_from(
            c, "/register", {"email": "new@example.com", "password": PASSWORD}, PRINTED
        )
    assert refused.status_code == 403 and ANOTHER_SITE in refused.text
    assert own.status_code == 303, "while the page's own loopback origin is welcome"


@pytest.mark.parametrize(
    "overrides",
    [
        {"environment": "production"},  # BASE_URL unset: its default, http://localhost:8000
        {"base_url": "http://localhost:8000"},  # set in development: exactly that origin
    ],
    ids=["production", "development-with-base-url"],
)
async def test_production_and_an_explicit_base_url_keep_one_exact_origin(
    app, db_url, mailbox: Mailbox, no_base_url, overrides
):
    async with serving(fresh_settings(db_url, mailbox.port)) as dev, browser_at(dev, PRINTED) as c:
        welcome = await post_from(
            c, "/register", {"email": "new@example.com", "password": PASSWORD}, PRINTED
        )
    assert welcome.status_code == 303, "development without BASE_URL takes 127.0.0.1"
    settings = fresh_settings(db_url, mailbox.port, **overrides)
    scheme = "https" if settings.secure_cookies else "http"  # so the client sends the cookies
    async with serving(settings) as served:
        for host in ("127.0.0.1", "[::1]"):
            origin = f"http://{host}:8000"
            async with browser_at(served, f"{scheme}://{host}:8000") as c:
                refused = await post_from(
                    c, "/register", {"email": "new@example.com", "password": PASSWORD}, origin
                )
            assert refused.status_code == 403 and ANOTHER_SITE in refused.text, host
        async with browser_at(served, f"{scheme}://localhost:8000") as c:
            accepted = await post_from(
                c,
                "/register",
                {"email": "new@example.com", "password": PASSWORD},
                "http://localhost:8000",
            )
        assert accepted.status_code == 303


# Item 2: the development outbox -------------------------------------------------------------


async def test_dev_mail_is_a_404_in_production(app, db_url, mailbox: Mailbox, tmp_path):
    settings = fresh_settings(db_url, mailbox.port, dev_mail_dir=tmp_path)
    async with serving(settings) as dev, browser_at(dev, "http://localhost") as c:
        assert (await c.get("/dev/mail")).status_code == 200, "development has it"
    settings = fresh_settings(db_url, mailbox.port, environment="production", dev_mail_dir=tmp_path)
    async with serving(settings) as production, browser_at(production, "http://localhost") as c:
        assert (await c.get("/dev/mail")).status_code == 404
        assert (await c.get(f"/dev/mail/{'1' * 20}-abcdef01.html")).status_code == 404


@pytest.mark.parametrize(
    ("environment", "kept"),
    [("development", ["sent", "not sent (SMTPConnectError)"]), ("production", [])],
)
async def test_development_keeps_mail_sent_or_not_and_production_never(
    mailbox: Mailbox, tmp_path, db_url, environment, kept
):
    settings = fresh_settings(db_url, mailbox.port, environment=environment, dev_mail_dir=tmp_path)
    msg = mail.build_message(settings, "sam@example.com", "code", code="123456")
    assert await mail.send(settings, msg) is True
    settings.smtp_port = 9
    assert await mail.send(settings, msg) is False
    assert [m.delivery for m in reversed(mail.kept(tmp_path))] == kept
    assert len(list(tmp_path.glob("*.eml"))) == len(kept)


async def test_dev_mail_is_a_404_to_a_client_that_is_not_this_machine(
    app, client, here, outbox, mailbox: Mailbox
):
    await post_form(client, "/register", {"email": "sam@example.com", "password": PASSWORD})
    await settle(app)
    assert (await here.get("/dev/mail")).status_code == 200
    assert (await client.get("/dev/mail")).status_code == 404, "client 203.0.113.7"
    rebound = await here.get("/dev/mail", headers={"Host": "evil.example:8000"})
    assert rebound.status_code == 404, "a page of another site resolved to 127.0.0.1"


async def test_dev_mail_shows_every_mail_newest_first_with_its_code_and_links(
    app, client, here, outbox, mailbox: Mailbox, session
):
    await make_user(session, "old@example.com")
    await session.commit()
    await post_form(client, "/forgot-password", {"email": "old@example.com"})
    await settle(app)
    await post_form(client, "/register", {"email": "sam@example.com", "password": PASSWORD})
    await settle(app)

    page = await here.get("/dev/mail")
    assert page.status_code == 200
    code = mailbox.code_for("sam@example.com")
    assert page.text.index("sam@example.com") < page.text.index("old@example.com"), "newest first"
    assert f"\n    {code}\n" in page.text, "the code, readable in the text part"
    link = mailbox.link_for("old@example.com", "/reset-password")
    assert re.search(rf'<a href="https?://[^"]+{re.escape(link)}"', page.text), "links are links"
    assert page.text.count(">sent<") == 2


async def test_the_html_part_is_shown_in_a_sandboxed_frame_under_its_own_policy(
    app, client, here, outbox, mailbox: Mailbox
):
    await post_form(client, "/register", {"email": "sam@example.com", "password": PASSWORD})
    await settle(app)
    page = await here.get("/dev/mail")
    frame = re.search(r'<iframe[^>]*\ssandbox\s[^>]*src="(/dev/mail/[0-9a-f-]+\.html)"', page.text)
    assert frame, "the HTML part is framed, sandboxed"
    html = await here.get(frame.group(1))
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    assert mailbox.code_for("sam@example.com") in html.text
    policy = html.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "sandbox" in policy and "script" not in policy
    assert "frame-ancestors 'self'" in policy and html.headers["x-frame-options"] == "SAMEORIGIN"
    assert (await here.get("/dev/mail/../../etc/passwd.html")).status_code == 404
    assert (await here.get(f"/dev/mail/{'9' * 20}-00000000.html")).status_code == 404


async def test_a_mail_that_could_not_be_sent_is_still_in_the_outbox(
    app, client, here, outbox, mailbox: Mailbox
):
    with mail_down(app):
        await post_form(client, "/register", {"email": "sam@example.com", "password": PASSWORD})
        await settle(app)
    assert mailbox.to("sam@example.com") == []
    page = await here.get("/dev/mail")
    assert "not sent (" in page.text
    code = re.search(r"\n    (\d{6})\n", page.text)
    assert code, "the code is readable although no mail server took it"
    verified = await post_form(client, "/verify", {"email": "sam@example.com", "code": code[1]})
    assert verified.status_code == 303


def test_the_outbox_keeps_the_newest_fifty_and_any_process_reads_them(tmp_path):
    for n in range(55):
        msg = EmailMessage()
        msg["To"], msg["Subject"] = f"n{n}@example.com", f"Mail {n}"
        msg.set_content(f"number {n}")
        mail.keep(tmp_path, msg, None)
    assert len(list(tmp_path.glob("*.eml"))) == mail.OUTBOX_KEEP
    kept = mail.kept(tmp_path)  # from the files alone, as another worker or a reload would
    assert [m.subject for m in kept[:2]] == ["Mail 54", "Mail 53"]
    assert kept[-1].subject == "Mail 5" and kept[0].text.strip() == "number 54"


async def test_the_verify_page_says_once_that_no_mail_server_answered_in_development(
    app, client, outbox, mailbox: Mailbox, db_url, no_base_url
):
    """Production keeps its "could not send, send a new code"."""
    with mail_down(app):
        registered = await post_form(
            client, "/register", {"email": "sam@example.com", "password": PASSWORD}
        )
        await settle(app)
    await client.get(registered.headers["location"])
    status = await client.get("/verify/status?email=sam%40example.com&n=1", headers=HTMX)
    assert status.text.count("No mail server answered") == 1
    assert 'href="/dev/mail"' in status.text
    assert "We could not send the code" not in status.text
    assert 'hx-swap-oob="innerHTML:#flashes"' in status.text, "the 'we sent' flash goes"

    settings = fresh_settings(db_url, mailbox.port, environment="production")
    async with serving(settings) as production, browser_at(production, "http://localhost") as c:
        status = await c.get("/verify/status?email=sam%40example.com&n=1", headers=HTMX)
    assert "We could not send the code" in status.text and "send a new code" in status.text
    assert "/dev/mail" not in status.text and "hx-swap-oob" not in status.text


# Item 3: the browser's time zone ------------------------------------------------------------


async def test_register_stores_the_browsers_time_zone_and_utc_without_one(
    app, client, session, mailbox: Mailbox
):
    registered = await post_form(
        client,
        "/register",
        {"email": "kei@example.com", "password": PASSWORD, "timezone": "Asia/Tokyo"},
    )
    await post_form(client, "/register", {"email": "nojs@example.com", "password": PASSWORD})
    await settle(app)
    assert registered.status_code == 303
    zones = dict((await session.execute(select(User.email, User.timezone))).tuples().all())
    assert zones == {"kei@example.com": "Asia/Tokyo", "nojs@example.com": "UTC"}


@pytest.mark.parametrize("headers", [{}, HTMX], ids=["plain", "htmx"])
async def test_register_refuses_an_unknown_time_zone_clearly_and_writes_nothing(
    app, client, session, mailbox: Mailbox, headers
):
    refused = await post_form(
        client,
        "/register",
        {"email": "kei@example.com", "password": PASSWORD, "timezone": "Mars/Olympus"},
        headers=headers,
    )
    await settle(app)
    assert refused.status_code == 422
    assert "&#39;Mars/Olympus&#39; is not a time zone we know" in refused.text
    assert '<select id="r-timezone" name="timezone"' in refused.text, "a picker to choose from"
    assert '<optgroup label="Asia">' in refused.text
    assert 'value="kei@example.com"' in refused.text, "what was typed stays"
    assert (await session.execute(select(func.count()).select_from(User))).scalar_one() == 0
    assert mailbox.messages == []


async def test_the_register_page_asks_the_browser_for_its_zone(client):
    page = await client.get("/register")
    assert '<input type="hidden" hidden name="timezone" value="" data-browser-timezone>' in (
        page.text
    )
    assert re.search(r'<script src="/static/js/timezone\.[0-9a-f]{12}\.js" defer>', page.text)


async def test_settings_group_the_zones_by_region_and_can_offer_the_browsers(
    client, alice, session
):
    alice.timezone = "Europe/Paris"
    await session.commit()
    await sign_in(client, "alice@example.com")
    page = await client.get("/settings")
    assert '<optgroup label="Asia">' in page.text and '<optgroup label="Europe">' in page.text
    assert '<option value="Asia/Tokyo" >Tokyo</option>' in page.text
    assert '<option value="Europe/Paris" selected>Paris</option>' in page.text
    assert 'data-tz-current="Europe/Paris"' in page.text and "data-tz-offer" in page.text
    assert re.search(r'<script src="/static/js/timezone\.[0-9a-f]{12}\.js" defer>', page.text)
    saved = await post_form(client, "/settings/preferences", {"timezone": "Asia/Tokyo"})
    assert saved.status_code == 303, "the offer's one tap posts just the zone"
    await session.refresh(alice)
    assert alice.timezone == "Asia/Tokyo" and alice.theme == "system"
