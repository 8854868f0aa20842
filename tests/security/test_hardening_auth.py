"""SECURITY.md rows 29, 33, 36 (NUL and multipart), 38 and 40: redirects stay on the site,
emailed links die with a change, pending and look-alike accounts, session hygiene."""

from urllib.parse import urljoin, urlsplit

import httpx
import pytest

from tests.factories import PASSWORD, post_form, sign_in

HTMX = {"HX-Request": "true"}
SITE = "http://testserver/"

# Each would lead a browser off the site if it were sent as it is: browsers drop tab, CR
# and LF, read a backslash as a slash, and follow a scheme or a host.
OFF_SITE = [
    "//evil.example",
    "/\t/evil.example",
    "/\n/evil.example",
    "/\r/evil.example",
    "/\\evil.example",
    "\\/evil.example",
    "/\x0b/evil.example",
    "/\x00/evil.example",
    "/ /evil.example",
    "/\x7f/evil.example",
    "https://evil.example",
    "javascript:alert(1)",
    "/\r\nSet-Cookie: a=b",
    "//[evil.example",
]


def where_a_browser_goes(location: str) -> str:
    """The host a browser would go to: it strips tab, CR and LF and reads \\ as /."""
    cleaned = location.replace("\t", "").replace("\r", "").replace("\n", "").replace("\\", "/")
    return urlsplit(urljoin(SITE, cleaned.strip())).netloc


def target(response: httpx.Response) -> str:
    location = response.headers.get("hx-redirect") or response.headers["location"]
    assert location.isascii() and location.isprintable(), location
    assert where_a_browser_goes(location) == "testserver", location
    return location


@pytest.mark.parametrize("htmx", [False, True], ids=["form", "htmx"])
@pytest.mark.parametrize("next_url", OFF_SITE)
async def test_row29_sign_in_never_sends_the_browser_off_site(client, alice, next_url, htmx):
    response = await post_form(
        client,
        "/login",
        {"email": "alice@example.com", "password": PASSWORD, "next": next_url},
        headers=HTMX if htmx else {},
    )
    assert response.status_code == (200 if htmx else 303)
    assert target(response) == "/"
    assert "sd_session" in response.cookies, "the sign-in worked"


@pytest.mark.parametrize("next_url", OFF_SITE)
async def test_row29_a_signed_in_visit_to_the_sign_in_page_stays_on_site(client, alice, next_url):
    await sign_in(client, "alice@example.com")
    response = await client.get("/login", params={"next": next_url})
    assert response.status_code == 303
    assert target(response) == "/"


@pytest.mark.parametrize("next_url", OFF_SITE)
async def test_row29_the_sign_in_form_only_carries_a_local_next(client, next_url):
    page = await client.get("/login", params={"next": next_url})
    assert page.status_code == 200
    assert 'name="next" value="/"' in page.text


@pytest.mark.parametrize("referer", ["/\t/evil.example", "/\\evil.example", "//evil.example"])
async def test_row29_the_theme_switch_returns_only_to_a_local_page(client, alice, referer):
    await sign_in(client, "alice@example.com")
    response = await post_form(
        client, "/settings/theme", {"theme": "dark"}, headers={"Referer": SITE[:-1] + referer}
    )
    assert response.status_code == 303
    assert target(response) == "/settings"


async def test_row29_local_targets_are_escaped_into_the_header(client, alice):
    response = await post_form(
        client,
        "/login",
        {"email": "alice@example.com", "password": PASSWORD, "next": "/entries?q=café&tag=über"},
        headers=HTMX,
    )
    assert response.headers["hx-redirect"] == "/entries?q=caf%C3%A9&tag=%C3%BCber"


async def test_row29_a_good_next_still_works(client, alice):
    response = await post_form(
        client, "/login", {"email": "alice@example.com", "password": PASSWORD, "next": "/dashboard"}
    )
    assert target(response) == "/dashboard"
