"""Helpers shared by routes: login requirement for pages, client address, mail after the answer."""

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import optional_user
from app.mail import MailJob
from app.models import User
from app.services import accounts


class LoginRequired(Exception):
    def __init__(self, next_url: str) -> None:
        self.next_url = next_url


async def page_user(request: Request, user: User | None = Depends(optional_user)) -> User:
    if user is None:
        raise LoginRequired(request.url.path)
    return user


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def after_response(
    request: Request, action: Callable[[AsyncSession], Awaitable[MailJob | None]]
) -> None:
    """Run an account action and its mail once the answer is on its way: same timing for all."""
    state = request.app.state
    state.background.spawn(
        accounts.in_background(settings=state.settings, maker=state.sessionmaker, action=action)
    )


PageUser = Annotated[User, Depends(page_user)]
