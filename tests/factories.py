"""Test data makers and the small steps every test repeats (CSRF token, sign in)."""

from datetime import date
from html.parser import HTMLParser
from typing import Any

import httpx

from app.auth import password_helper
from app.models import User
from app.schemas import EntryCreate
from app.services import categories, entries

PASSWORD = "correct horse battery staple"
_hashes: dict[str, str] = {}


async def make_user(session: Any, email: str, password: str = PASSWORD, **overrides: Any) -> User:
    """A verified, active user; argon2 hashes are cached per password to keep tests fast."""
    if password not in _hashes:
        _hashes[password] = password_helper.hash(password)
    values = {
        "email": email,
        "hashed_password": _hashes[password],
        "is_verified": True,
        **overrides,
    }
    user = User(**values)
    session.add(user)
    await session.flush()
    categories.add_defaults(session, user)  # as registration does
    await session.commit()
    await session.refresh(user)
    return user


async def make_entry(session: Any, user: User, **overrides: Any) -> Any:
    """An entry of `user` written through the service (as the pages and the API write them);
    `day` may be an ISO string. Returns the Entry."""
    if isinstance(overrides.get("day"), str):
        overrides["day"] = date.fromisoformat(overrides["day"])
    title = overrides.pop("title", f"win {overrides.get('day', 'today')}")
    return await entries.create_entry(
        session=session, user=user, data=EntryCreate(title=title, **overrides)
    )


async def csrf_token(client: httpx.AsyncClient) -> str:
    """The double-submit token a page would embed in its forms."""
    if "csrftoken" not in client.cookies:
        await client.get("/")
    return client.cookies["csrftoken"]


async def post_form(
    client: httpx.AsyncClient, url: str, data: dict[str, str], **kwargs: Any
) -> httpx.Response:
    """Post a page form the way a browser does: with the CSRF token and our own Origin."""
    form = {"csrftoken": await csrf_token(client), **data}
    headers = {"Origin": "http://testserver", **kwargs.pop("headers", {})}
    return await client.post(url, data=form, headers=headers, **kwargs)


async def sign_in(
    client: httpx.AsyncClient, email: str, password: str = PASSWORD
) -> httpx.Response:
    """Sign in through the page form; the session cookie stays on the client."""
    response = await post_form(client, "/login", {"email": email, "password": password})
    assert response.status_code == 303, response.text
    return response


async def bearer_token(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> str:
    response = await client.post(
        "/api/v1/auth/bearer/login", data={"username": email, "password": password}
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


class _Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, attrs))


def assert_inert(html: str, allowed_hx: set[str] | None = None) -> None:
    """No script element, event handler, javascript: link or unexpected hx-* attribute.

    Pages carry their own hx-* attributes; pass the exact set the page's markup may hold.
    """
    parser = _Elements()
    parser.feed(html)
    for tag, attrs in parser.found:
        assert tag != "script" or dict(attrs).get("src", "").startswith("/static/"), (tag, attrs)
        for name, value in attrs:
            assert not name.startswith("on"), (tag, name, value)
            assert not (value or "").strip().lower().startswith("javascript:"), (tag, name, value)
            if name.startswith(("hx-", "data-hx-")):
                assert allowed_hx is not None and (name, value) in allowed_hx, (tag, name, value)
