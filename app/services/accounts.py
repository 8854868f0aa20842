"""Accounts: registration, 6-digit email codes, login checks and password changes.

Every answer that could reveal whether an email is registered is decided here so pages
and API share it; the mail itself is sent later by app.mail.deliver (in the background).
"""

import hashlib
import hmac
import logging
import secrets
from collections.abc import Awaitable, Callable
from datetime import timedelta
from enum import Enum

from anyio import to_thread
from fastapi.security import OAuth2PasswordRequestForm
from fastapi_users_db_sqlalchemy import SQLAlchemyUserDatabase
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from app import mail
from app.auth import UserManager, password_helper, password_problem, revoke_sessions
from app.config import Settings
from app.mail import MailJob
from app.models import EmailCode, User
from app.models.base import utcnow
from app.ratelimit import AuthLimiter
from app.services import categories

log = logging.getLogger("app.accounts")

CODE_TTL = timedelta(minutes=10)
CODE_MAX_ATTEMPTS = 5


class LoginResult(Enum):
    OK = "ok"
    BAD_CREDENTIALS = "LOGIN_BAD_CREDENTIALS"
    NOT_VERIFIED = "LOGIN_USER_NOT_VERIFIED"
    RATE_LIMITED = "TOO_MANY_ATTEMPTS"


class VerifyResult(Enum):
    OK = "ok"
    INVALID = "VERIFY_CODE_INVALID"
    RATE_LIMITED = "TOO_MANY_ATTEMPTS"


def normalise_email(email: str) -> str:
    return email.strip().lower()


async def user_by_email(session: AsyncSession, email: str) -> User | None:
    stmt = select(User).where(func.lower(User.email) == normalise_email(email))
    return (await session.execute(stmt)).scalar_one_or_none()


def _code_hash(secret: str, user_id: object, code: str) -> str:
    return hmac.new(secret.encode(), f"{user_id}:{code}".encode(), hashlib.sha256).hexdigest()


async def issue_code(*, session: AsyncSession, user: User, secret: str) -> str:
    """A fresh code for the user; any older code dies with it."""
    await session.execute(delete(EmailCode).where(EmailCode.user_id == user.id))  # type: ignore[arg-type]
    code = f"{secrets.randbelow(1_000_000):06d}"
    session.add(
        EmailCode(
            user_id=user.id,
            code_hash=_code_hash(secret, user.id, code),
            expires_at=utcnow() + CODE_TTL,
        )
    )
    await session.commit()
    return code


async def register(
    *, session: AsyncSession, email: str, password_hash: str, secret: str
) -> MailJob:
    """Create the account (or refresh an unverified one's code) and say which mail to send."""
    email = normalise_email(email)
    user = await user_by_email(session, email)
    if user is None:
        user = User(email=email, hashed_password=password_hash, is_verified=False)
        session.add(user)
        try:
            await session.flush()
            categories.add_defaults(session, user)
        except IntegrityError:  # registered at the same moment by another request
            await session.rollback()
            return MailJob("already_registered", email)
    elif user.is_verified:
        return MailJob("already_registered", email)
    else:  # unverified: whoever proves the mailbox owns it, with the latest password
        user.hashed_password = password_hash
    code = await issue_code(session=session, user=user, secret=secret)
    return MailJob("code", email, {"code": code}, user.id)


async def request_code(*, session: AsyncSession, email: str, secret: str) -> MailJob | None:
    """A new code for an unverified account; nothing for anyone else."""
    user = await user_by_email(session, email)
    if user is None or user.is_verified or not user.is_active:
        return None
    code = await issue_code(session=session, user=user, secret=secret)
    return MailJob("code", user.email, {"code": code}, user.id)


async def verify_code(
    *,
    session: AsyncSession,
    limiter: AuthLimiter,
    email: str,
    code: str,
    ip: str,
    secret: str,
) -> VerifyResult:
    email = normalise_email(email)
    if await limiter.code_blocked(email, ip):
        return VerifyResult.RATE_LIMITED
    user = await user_by_email(session, email)
    row = None
    if user is not None:
        stmt = select(EmailCode).where(col(EmailCode.user_id) == user.id)
        row = (await session.execute(stmt)).scalar_one_or_none()
    if (
        user is None
        or row is None
        or row.expires_at <= utcnow()
        or row.attempts >= CODE_MAX_ATTEMPTS
    ):
        await limiter.code_failed(email, ip)
        return VerifyResult.INVALID
    if not hmac.compare_digest(row.code_hash, _code_hash(secret, user.id, code.strip())):
        await session.execute(
            update(EmailCode)
            .where(EmailCode.id == row.id)  # type: ignore[arg-type]
            .values(attempts=EmailCode.attempts + 1)
        )
        await session.commit()
        await limiter.code_failed(email, ip)
        return VerifyResult.INVALID
    await session.delete(row)
    user.is_verified = True
    await session.commit()
    return VerifyResult.OK


async def code_mail_failed(*, session: AsyncSession, email: str) -> bool:
    stmt = (
        select(col(EmailCode.mail_failed))
        .join(User, col(EmailCode.user_id) == User.id)
        .where(func.lower(User.email) == normalise_email(email))
    )
    return bool((await session.execute(stmt)).scalar_one_or_none())


async def login(
    *, manager: UserManager, limiter: AuthLimiter, email: str, password: str, ip: str
) -> tuple[LoginResult, User | None]:
    """Check a password; failures count against the account and the address."""
    email = normalise_email(email)
    if await limiter.login_blocked(email, ip):
        return LoginResult.RATE_LIMITED, None
    credentials = OAuth2PasswordRequestForm(username=email, password=password[:1024])
    user = await manager.authenticate(credentials)
    if user is None or not user.is_active:
        await limiter.login_failed(email, ip)
        return LoginResult.BAD_CREDENTIALS, None
    if not user.is_verified:
        return LoginResult.NOT_VERIFIED, user
    return LoginResult.OK, user


async def forgot_password(
    *, session: AsyncSession, settings: Settings, email: str
) -> MailJob | None:
    """A reset link for an active account; nothing for anyone else."""
    user = await user_by_email(session, email)
    if user is None or not user.is_active:
        return None
    manager = UserManager(SQLAlchemyUserDatabase(session, User), settings)
    await manager.forgot_password(user)
    return manager.outbox.pop()


async def reset_password(*, manager: UserManager, token: str, password: str) -> User:
    """Use a reset link: the mailbox is proven, so the account counts as verified too."""
    user = await manager.reset_password(token, password)
    if not user.is_verified:
        await manager.user_db.update(user, {"is_verified": True})
    return user


async def change_password(
    *, session: AsyncSession, manager: UserManager, user: User, current: str, new: str
) -> tuple[str, str] | None:
    """Change the password and end every session; (field, sentence) when it cannot be done."""
    ok, _ = await to_thread.run_sync(
        password_helper.verify_and_update, current, user.hashed_password
    )
    if not ok:
        return "current_password", "Your current password is not correct."
    problem = password_problem(new, user.email)
    if problem:
        return "password", problem
    new_hash = await to_thread.run_sync(password_helper.hash, new)
    await manager.user_db.update(user, {"hashed_password": new_hash})
    await revoke_sessions(session, user)
    return None


async def deliver(
    *, settings: Settings, maker: async_sessionmaker[AsyncSession], job: MailJob
) -> None:
    """Send one account mail; remember a failed code mail so the verify page can say so."""
    code = job.context.get("code")
    if settings.dev and code:
        log.warning("development only: verification code for %s is %s", job.to, code)
    sent = await mail.send(
        settings, mail.build_message(settings, job.to, job.template, **job.context)
    )
    if not sent and job.code_user_id is not None:
        async with maker() as session:
            await session.execute(
                update(EmailCode)
                .where(col(EmailCode.user_id) == job.code_user_id)
                .values(mail_failed=True)
            )
            await session.commit()


async def in_background(
    *,
    settings: Settings,
    maker: async_sessionmaker[AsyncSession],
    action: Callable[[AsyncSession], Awaitable[MailJob | None]],
) -> None:
    """Run an account action in its own session after the answer went out, then mail."""
    async with maker() as session:
        job = await action(session)
    if job is not None:
        await deliver(settings=settings, maker=maker, job=job)


async def update_preferences(
    *, session: AsyncSession, user: User, changes: dict[str, object]
) -> None:
    """Store checked preferences (the schema validated each value); None means unchanged."""
    for name, value in changes.items():
        if value is not None:
            setattr(user, name, value)
    await session.commit()


async def delete_account(*, session: AsyncSession, user: User, password: str) -> str | None:
    """Delete the user and, through ON DELETE CASCADE, every row they own; a sentence if refused."""
    ok, _ = await to_thread.run_sync(
        password_helper.verify_and_update, password, user.hashed_password
    )
    if not ok:
        return "Your password is not correct."
    await session.execute(delete(User).where(col(User.id) == user.id))
    await session.commit()
    return None
