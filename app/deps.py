"""Annotated shortcuts for route signatures."""

__all__ = [
    "CurrentUser",
    "LimiterDep",
    "OptionalUser",
    "SessionDep",
    "SettingsDep",
    "StrategyDep",
    "UserManagerDep",
]

from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import CurrentUser, OptionalUser, StrategyDep, UserManagerDep
from app.config import Settings
from app.db import get_session

if TYPE_CHECKING:
    from app.ratelimit import AuthLimiter


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_limiter(request: Request) -> "AuthLimiter":
    return request.app.state.limiter


SessionDep = Annotated[AsyncSession, Depends(get_session)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
LimiterDep = Annotated["AuthLimiter", Depends(get_limiter)]
