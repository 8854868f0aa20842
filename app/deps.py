"""What route signatures ask for: the database session, the settings, and the signed-in
user, one way for pages (PageUser: a redirect to sign in) and one for the API (CurrentUser:
401/403; UserToken with the session's raw token; OptionalUser)."""

__all__ = [
    "CurrentUser",
    "LimiterDep",
    "OptionalUser",
    "PageUser",
    "SessionDep",
    "SettingsDep",
    "StrategyDep",
    "UserManagerDep",
    "UserToken",
]

from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import (
    CurrentUser,
    OptionalUser,
    StrategyDep,
    UserManagerDep,
    current_user_token,
    find_session,
    request_tokens,
    signed_in,
)
from app.config import Settings
from app.db import get_session
from app.models import User

if TYPE_CHECKING:
    from app.ratelimit import AuthLimiter


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_limiter(request: Request) -> "AuthLimiter":
    return request.app.state.limiter


SessionDep = Annotated[AsyncSession, Depends(get_session)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
LimiterDep = Annotated["AuthLimiter", Depends(get_limiter)]


class LoginRequired(Exception):
    def __init__(self, next_url: str) -> None:
        self.next_url = next_url


async def page_user(request: Request) -> User:
    """The signed-in user of a page, or a redirect to sign in. One dependency layer, not the
    API's four (FastAPI's per-layer cost was a quarter of a cached page's, measured)."""
    cookie, bearer = request_tokens(request)
    user = signed_in(await find_session(request, cookie, bearer))
    if user is None:
        raise LoginRequired(request.url.path)
    return user


async def error_page_user(request: Request) -> User | None:
    """The signed-in user for an error page (their navigation and theme), or None: an error
    page never fails because the session could not be looked up."""
    cookie, bearer = request_tokens(request)
    if cookie is None and bearer is None:
        return None
    try:
        return signed_in(await find_session(request, cookie, bearer))
    except Exception:  # the page it explains matters more than its menu
        return None


PageUser = Annotated[User, Depends(page_user)]
UserToken = Annotated[tuple[User, str], Depends(current_user_token)]
