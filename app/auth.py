"""fastapi-users wiring: user manager, password policy, revocable sessions, dependencies.

Sessions live in the access_token table (fastapi-users' database strategy), so logout,
password change and reset revoke them for real. Only a SHA-256 of each token is stored.
"""

import base64
import hashlib
import time
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Annotated, Any, cast

import jwt
from fastapi import Depends, HTTPException, Request, Response, status
from fastapi_users import BaseUserManager, InvalidPasswordException, UUIDIDMixin
from fastapi_users.authentication import (
    BearerTransport,
    CookieTransport,
)
from fastapi_users.authentication.strategy.db import DatabaseStrategy
from fastapi_users.exceptions import (
    InvalidID,
    InvalidResetPasswordToken,
    UserInactive,
    UserNotExists,
)
from fastapi_users.jwt import decode_jwt, generate_jwt
from fastapi_users.password import PasswordHelper
from fastapi_users_db_sqlalchemy import SQLAlchemyUserDatabase
from fastapi_users_db_sqlalchemy.access_token import SQLAlchemyAccessTokenDatabase
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from zxcvbn import zxcvbn

from app.config import Settings, settings
from app.db import get_session
from app.mail import MailJob
from app.models import AccessToken, User
from app.models.base import utcnow
from app.security import csrf_cookie

PASSWORD_MIN = 8
PASSWORD_MAX = 128
# OWASP's argon2id baseline: 19 MiB of memory, 2 passes, 1 lane.
password_helper = PasswordHelper(
    PasswordHash((Argon2Hasher(memory_cost=19 * 1024, time_cost=2, parallelism=1),))
)


def password_problem(password: str, email: str = "") -> str | None:
    """A sentence saying what is wrong with a new password, or None when it will do."""
    if len(password) < PASSWORD_MIN:
        return f"Use at least {PASSWORD_MIN} characters."
    if len(password) > PASSWORD_MAX:
        return f"Use at most {PASSWORD_MAX} characters."
    if "\x00" in password:
        return "The password contains a character that is not allowed."
    result = zxcvbn(password[:64], user_inputs=[email, email.split("@")[0], "successdiary"])
    if result["score"] < 2:
        warning = result["feedback"]["warning"] or "This password is too easy to guess."
        return f"{warning.rstrip('.')}. Try a longer phrase of unrelated words."
    return None


class UserManager(UUIDIDMixin, BaseUserManager[User, uuid.UUID]):
    reset_password_token_lifetime_seconds = 3600

    def __init__(self, user_db: SQLAlchemyUserDatabase, app_settings: Settings) -> None:
        super().__init__(user_db, password_helper)
        self.reset_password_token_secret = app_settings.secret_key
        self.verification_token_secret = app_settings.secret_key
        self.outbox: list[MailJob] = []

    async def validate_password(self, password: str, user: Any) -> None:
        problem = password_problem(password, getattr(user, "email", ""))
        if problem:
            raise InvalidPasswordException(reason=problem)

    async def on_after_forgot_password(
        self, user: User, token: str, request: Request | None = None
    ) -> None:
        self.outbox.append(MailJob("reset_password", user.email, {"token": token}))

    async def forgot_password(self, user: User, request: Request | None = None) -> None:
        """fastapi-users' reset link, with the account's security stamp signed into it."""
        if not user.is_active:
            raise UserInactive()
        data = {
            "sub": str(user.id),
            "password_fgpt": self.password_helper.hash(user.hashed_password),
            "stamp": user.security_stamp,
            "aud": self.reset_password_token_audience,
        }
        lifetime = self.reset_password_token_lifetime_seconds
        token = generate_jwt(data, self.reset_password_token_secret, lifetime)
        await self.on_after_forgot_password(user, token, request)

    async def reset_password(
        self, token: str, password: str, request: Request | None = None
    ) -> User:
        """fastapi-users' reset, only while the token's stamp is the account's: a change of
        email or password since the link was mailed ends it (and an account gone, too)."""
        audience = [self.reset_password_token_audience]
        try:
            data = decode_jwt(token, self.reset_password_token_secret, audience)
            user = await self.get(self.parse_id(data["sub"]))
        except (jwt.PyJWTError, KeyError, InvalidID, UserNotExists):
            raise InvalidResetPasswordToken() from None
        if data.get("stamp") != user.security_stamp:
            raise InvalidResetPasswordToken()
        return await super().reset_password(token, password, request)

    async def on_after_reset_password(self, user: User, request: Request | None = None) -> None:
        await self.user_db.update(user, {"security_stamp": user.security_stamp + 1})
        await revoke_sessions(cast(SQLAlchemyUserDatabase, self.user_db).session, user)


def hash_token(token: str) -> str:
    """URL-safe base64 of SHA-256: 43 characters, the width of fastapi-users' token column."""
    digest = hashlib.sha256(token.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


class RecentUses:
    """The sessions this process recorded as used in the last TOUCH_EVERY seconds: GETs read
    through read-only connections, so a session's last use is written by a separate write
    (app.auth.note_use), and at most once per session and period, not on every request."""

    TOUCH_EVERY = 300.0
    KEEP = 50_000  # past this many, forget the ones recorded longer ago than TOUCH_EVERY

    def __init__(self) -> None:
        self.recorded: dict[str, float] = {}

    def mark(self, hashed: str) -> None:
        """The session was recorded as used just now (a new session is)."""
        self.recorded[hashed] = time.monotonic()

    def due(self, hashed: str) -> bool:
        """True (and marked) when the session's use should be recorded now."""
        now = time.monotonic()
        if now - self.recorded.get(hashed, -self.TOUCH_EVERY) < self.TOUCH_EVERY:
            return False
        if len(self.recorded) >= self.KEEP:
            cut = now - self.TOUCH_EVERY
            self.recorded = {h: t for h, t in self.recorded.items() if t >= cut}
        self.recorded[hashed] = now
        return True


class HashedDatabaseStrategy(DatabaseStrategy[User, uuid.UUID, AccessToken]):
    def __init__(self, database: Any, lifetime_seconds: int, uses: RecentUses) -> None:
        super().__init__(database, lifetime_seconds=lifetime_seconds)
        self.uses = uses

    async def read_token(self, token: str | None, user_manager: Any) -> User | None:
        if token is None or len(token) > 200:
            return None
        return await super().read_token(hash_token(token), user_manager)

    async def write_token(self, user: User) -> str:
        token = password_helper.generate()
        hashed = hash_token(token)
        await self.database.create({"token": hashed, "user_id": user.id})
        self.uses.mark(hashed)  # created just now: its first use needs no record
        return token

    async def destroy_token(self, token: str, user: User) -> None:
        await super().destroy_token(hash_token(token), user)


async def get_user_db(
    session: AsyncSession = Depends(get_session),
) -> AsyncIterator[SQLAlchemyUserDatabase]:
    yield SQLAlchemyUserDatabase(session, User)


async def get_user_manager(
    request: Request, user_db: SQLAlchemyUserDatabase = Depends(get_user_db)
) -> AsyncIterator[UserManager]:
    yield UserManager(user_db, request.app.state.settings)


def get_strategy(
    request: Request, session: AsyncSession = Depends(get_session)
) -> HashedDatabaseStrategy:
    db = SQLAlchemyAccessTokenDatabase(session, AccessToken)
    state = request.app.state
    return HashedDatabaseStrategy(
        db,
        lifetime_seconds=state.settings.session_lifetime_seconds,
        uses=state.recent_uses,
    )


def cookie_transport(app_settings: Settings) -> CookieTransport:
    return CookieTransport(
        cookie_name=app_settings.cookie_name("sd_session"),
        cookie_max_age=app_settings.session_lifetime_seconds,
        cookie_secure=app_settings.secure_cookies,
        cookie_httponly=True,
        cookie_samesite="lax",
    )


# Transports are fixed at import time, so they follow the process settings; tests that
# need other cookie rules build their app in a subprocess or with matching settings.
session_cookie = cookie_transport(settings)
bearer_transport = BearerTransport(tokenUrl="/api/v1/auth/bearer/login")


_tokens = AccessToken.__table__
_SINCE = AccessToken.created_at >= bindparam("since")
_USED_SINCE = _tokens.c.last_used_at >= bindparam("used_since")
# Built once: the statement every signed-in request runs (only its parameters change).
SESSION_LOOKUP = (
    select(User, _tokens.c.token)
    .join(AccessToken, AccessToken.user_id == User.id)  # type: ignore[arg-type]
    .where(_tokens.c.token.in_(bindparam("hashes", expanding=True)), _SINCE, _USED_SINCE)
)


async def _sessions_of(request: Request, params: dict[str, Any]) -> dict[str, User]:
    """The users behind the given token hashes, keyed by hash, loaded into the request's
    session (read-only for GET and HEAD), where a write's change to them is tracked."""
    session = await get_session(request)
    result = await session.execute(SESSION_LOOKUP, params)
    return {hashed: user for user, hashed in result.all()}


async def find_session(
    request: Request, cookie: str | None, bearer: str | None
) -> tuple[User, str] | None:
    """The signed-in user and the raw token that proved it, in one statement: the token
    joined to its user.

    A request with an Authorization header is signed in by that header alone, never by the
    cookie next to it: the CSRF check lets such requests through (a page on another site
    cannot set the header), so a cookie must not ride along with a junk token.

    The same rules as fastapi-users' database strategy, and an idle limit: the token's hash
    must be stored, younger than the session lifetime and used within the idle time, so a
    revoked (deleted) or forgotten session stops at once.
    """
    if "authorization" in request.headers:
        cookie = None
    tokens = [(t, hash_token(t)) for t in (cookie, bearer) if t is not None and len(t) <= 200]
    if not tokens:
        return None
    settings, now = request.app.state.settings, utcnow()
    params = {
        "hashes": [hashed for _, hashed in tokens],
        "since": now - timedelta(seconds=settings.session_lifetime_seconds),
        "used_since": now - timedelta(seconds=settings.session_idle_seconds),
    }
    found = await _sessions_of(request, params)
    hashed = next((h for _, h in tokens if h in found), None)
    if hashed is None:
        return None
    note_use(request, hashed)
    return found[hashed], next(raw for raw, h in tokens if h == hashed)


def note_use(request: Request, hashed: str) -> None:
    """Record that the session was used, at most every few minutes (RecentUses.TOUCH_EVERY),
    through the write engine after the answer: the read path stays read-only."""
    state = request.app.state
    if state.recent_uses.due(hashed):
        state.background.spawn(_record_use(state.sessionmaker, hashed))


async def _record_use(maker: async_sessionmaker[AsyncSession], hashed: str) -> None:
    now = utcnow()
    stale = now - timedelta(seconds=RecentUses.TOUCH_EVERY)
    async with maker() as session:  # another worker may have recorded it meanwhile
        await session.execute(
            update(AccessToken)
            .where(_tokens.c.token == hashed, _tokens.c.last_used_at < stale)
            .values(last_used_at=now)
        )
        await session.commit()


# The transports' schemes: the API's documented ways to sign in (cookie or bearer token).
Cookie = Annotated[str | None, Depends(session_cookie.scheme)]
Bearer = Annotated[str | None, Depends(bearer_transport.scheme)]


def request_tokens(request: Request) -> tuple[str | None, str | None]:
    """The session cookie and bearer token, read as the transports read them (for pages,
    which are not in the API's schema and so skip the schemes' dependency layers)."""
    scheme, _, bearer = request.headers.get("authorization", "").partition(" ")
    cookie = request.cookies.get(session_cookie.cookie_name)
    return cookie, (bearer or None) if scheme.lower() == "bearer" else None


def signed_in(found: tuple[User, str] | None) -> User | None:
    """The user of a session when they may use the app: active and verified."""
    user = found[0] if found is not None else None
    return user if user is not None and user.is_active and user.is_verified else None


def _required(found: tuple[User, str] | None) -> tuple[User, str]:
    """401 without a live session, 403 for an unverified account."""
    if found is None or not found[0].is_active:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED)
    if not found[0].is_verified:
        raise HTTPException(status.HTTP_403_FORBIDDEN)
    return found


# Each dependency below reads the schemes itself: one layer over them, not a chain (FastAPI's
# cost per dependency layer was measured in bench/README.md).
async def optional_user(request: Request, cookie: Cookie, bearer: Bearer) -> User | None:
    """An active, verified user, or None (fastapi-users' `current_user(optional=True)`)."""
    return signed_in(await find_session(request, cookie, bearer))


async def current_user_token(request: Request, cookie: Cookie, bearer: Bearer) -> tuple[User, str]:
    """An active, verified user and the raw session token that proved it."""
    return _required(await find_session(request, cookie, bearer))


async def current_user(request: Request, cookie: Cookie, bearer: Bearer) -> User:
    """An active, verified user (see current_user_token)."""
    return _required(await find_session(request, cookie, bearer))[0]


async def revoke_sessions(session: AsyncSession, user: User, keep: str | None = None) -> None:
    """Delete every session of the user, except the one whose raw token is `keep`."""
    stmt = delete(AccessToken).where(AccessToken.user_id == user.id)  # type: ignore[arg-type]
    if keep is not None:
        stmt = stmt.where(AccessToken.token != hash_token(keep))  # type: ignore[arg-type]
    await session.execute(stmt)
    await session.commit()


CurrentUser = Annotated[User, Depends(current_user)]
OptionalUser = Annotated[User | None, Depends(optional_user)]
UserManagerDep = Annotated[UserManager, Depends(get_user_manager)]
StrategyDep = Annotated[HashedDatabaseStrategy, Depends(get_strategy)]


async def start_session(response: Response, strategy: HashedDatabaseStrategy, user: User) -> None:
    """A new revocable session for the browser: its cookie goes on `response`."""
    token = await strategy.write_token(user)
    login = await session_cookie.get_login_response(token)
    response.headers.append("set-cookie", login.headers["set-cookie"])


async def sign_in(
    request: Request, response: Response, strategy: HashedDatabaseStrategy, user: User
) -> None:
    """A browser signs in (the page or the API's cookie login): a new session and a new CSRF
    token, so a token fixed or seen before the sign-in does not work with the session."""
    await start_session(response, strategy, user)
    response.headers.append("set-cookie", csrf_cookie(request.app.state.settings))


async def end_session(
    request: Request, response: Response, strategy: HashedDatabaseStrategy, user: User | None
) -> None:
    """Revoke the browser's session token and clear its cookie."""
    token = request.cookies.get(session_cookie.cookie_name)
    if token and user is not None:
        await strategy.destroy_token(token, user)
    logout = await session_cookie.get_logout_response()
    response.headers.append("set-cookie", logout.headers["set-cookie"])
