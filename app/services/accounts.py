"""Accounts: registration, 6-digit email codes, login checks, password and email changes.

Every answer that could reveal whether an email is registered is decided here so pages
and API share it; the mail itself is queued after the answer (deliver) and sent by a job
(app/jobs.py).
"""

import hashlib
import hmac
import logging
import secrets
import unicodedata
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass
from datetime import timedelta
from enum import Enum
from typing import TYPE_CHECKING, Any, cast

from anyio import to_thread
from email_validator import EmailNotValidError, validate_email
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
from app.schemas import stored_days
from app.services import audit, categories
from app.services.audit import Origin

if TYPE_CHECKING:
    from app.storage import Storage

log = logging.getLogger("app.accounts")

CODE_TTL = timedelta(minutes=10)
CODE_MAX_ATTEMPTS = 5


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str


class LoginResult(Enum):
    OK = "ok"
    BAD_CREDENTIALS = "LOGIN_BAD_CREDENTIALS"
    NOT_VERIFIED = "LOGIN_USER_NOT_VERIFIED"
    RATE_LIMITED = "TOO_MANY_ATTEMPTS"


class VerifyResult(Enum):
    OK = "ok"
    INVALID = "VERIFY_CODE_INVALID"
    RATE_LIMITED = "TOO_MANY_ATTEMPTS"


class EmailChangeResult(Enum):
    OK = "ok"
    INVALID = "EMAIL_CODE_INVALID"
    TAKEN = "EMAIL_TAKEN"
    RATE_LIMITED = "TOO_MANY_ATTEMPTS"


def normalise_email(email: str) -> str:
    """One spelling per mailbox, whichever way it came in (page, API, command line): the form
    email-validator gives (Unicode NFC, the domain IDNA-mapped, as the API's EmailStr has it),
    in lower case. A look-alike spelling (NFD, punycode, full-width) is the same account."""
    email = unicodedata.normalize("NFC", email.strip())
    with suppress(EmailNotValidError):  # else it matches no account: each was stored valid
        email = validate_email(email, check_deliverability=False).normalized
    return unicodedata.normalize("NFC", email.lower())


async def user_by_email(session: AsyncSession, email: str) -> User | None:
    stmt = select(User).where(func.lower(User.email) == normalise_email(email))
    return (await session.execute(stmt)).scalar_one_or_none()


def _code_hash(secret: str, user_id: object, code: str) -> str:
    return hmac.new(secret.encode(), f"{user_id}:{code}".encode(), hashlib.sha256).hexdigest()


async def issue_code(
    *, session: AsyncSession, user: User, secret: str, pending_email: str | None = None
) -> str:
    """A fresh code for the user (for a new address when `pending_email` is set); any older
    code dies with it."""
    await session.execute(delete(EmailCode).where(EmailCode.user_id == user.id))  # type: ignore[arg-type]
    code = f"{secrets.randbelow(1_000_000):06d}"
    session.add(
        EmailCode(
            user_id=user.id,
            code_hash=_code_hash(secret, user.id, code),
            expires_at=utcnow() + CODE_TTL,
            pending_email=pending_email,
        )
    )
    await session.commit()
    return code


@dataclass(frozen=True)
class NewCode:
    """A fresh code to make for `user` and mail to `to`, once the address may get one (see
    in_background): until then the pending code stays as it is."""

    user: User
    to: str
    secret: str
    contested: bool = False  # a second sign-up with another password: the mail says so


async def _code_row(session: AsyncSession, user: User, *, change: bool) -> EmailCode | None:
    """The user's code for verifying the account (change=False) or a new address (True)."""
    pending = col(EmailCode.pending_email)
    stmt = select(EmailCode).where(
        col(EmailCode.user_id) == user.id, pending.is_not(None) if change else pending.is_(None)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def _use_code(
    session: AsyncSession, user: User, code: str, secret: str, *, change: bool
) -> EmailCode | None:
    """The user's live code (for the account, or for a new address when `change`) when `code`
    is it; the row is then deleted (the caller commits).

    The try is counted before the code is compared, in the statement that checks the count
    (UPDATE ... WHERE attempts < 5 RETURNING), and committed at once: concurrent tries can
    never use more than the code's 5, and the sixth finds it dead.
    """
    pending = col(EmailCode.pending_email)
    claimed = (
        await session.execute(
            update(EmailCode)
            .where(
                col(EmailCode.user_id) == user.id,
                pending.is_not(None) if change else pending.is_(None),
                col(EmailCode.attempts) < CODE_MAX_ATTEMPTS,
            )
            .values(attempts=col(EmailCode.attempts) + 1)
            .returning(EmailCode)
            .execution_options(synchronize_session=False, populate_existing=True)
        )
    ).scalar_one_or_none()
    await session.commit()
    if claimed is None or claimed.expires_at <= utcnow():
        return None
    if not hmac.compare_digest(claimed.code_hash, _code_hash(secret, user.id, code.strip())):
        return None
    await session.delete(claimed)
    return claimed


async def register(
    *,
    session: AsyncSession,
    email: str,
    password: str,
    password_hash: str,
    secret: str,
    timezone: str | None = None,
) -> MailJob | NewCode:
    """Create the account (or a new code for an unverified one) and say which mail to send.

    A second sign-up of an address still waiting for its code never changes its password
    (nor its time zone): otherwise the last one to sign up would own the account that the
    mailbox's owner then verifies. The same password again only brings a new code; another
    one is ignored, and the code mail says so (whoever does not know the first password sets
    one by "forgot password" once the address is proven, which ends every other session).
    The answer is the same for every address. `timezone` (checked by the caller) is the
    browser's; an account keeps UTC without it.
    """
    email = normalise_email(email)
    user = await user_by_email(session, email)
    contested = False
    if user is None:
        user = User(email=email, hashed_password=password_hash, is_verified=False)
        if timezone:
            user.timezone = timezone
        session.add(user)
        try:
            await session.flush()
            categories.add_defaults(session, user)
        except IntegrityError:  # registered at the same moment by another request
            await session.rollback()
            return MailJob("already_registered", email)
    elif user.is_verified:
        return MailJob("already_registered", email)
    elif await _password_ok(user, password):
        user.timezone = timezone or user.timezone
    else:
        contested = True
    await session.commit()
    return NewCode(user, email, secret, contested)


async def request_code(*, session: AsyncSession, email: str, secret: str) -> NewCode | None:
    """A new code for an unverified account; nothing for anyone else."""
    user = await user_by_email(session, email)
    if user is None or user.is_verified or not user.is_active:
        return None
    return NewCode(user, user.email, secret)


async def verify_code(
    *,
    session: AsyncSession,
    limiter: AuthLimiter,
    email: str,
    code: str,
    ip: str,
    secret: str,
) -> VerifyResult:
    """Check a code; each try takes its slot before the code is compared, a right one gives
    it back."""
    email = normalise_email(email)
    if not await limiter.code_attempt(email, ip):
        return VerifyResult.RATE_LIMITED
    user = await user_by_email(session, email)
    if user is None or await _use_code(session, user, code, secret, change=False) is None:
        return VerifyResult.INVALID
    user.is_verified = True
    await session.commit()
    await limiter.code_succeeded(email, ip)
    return VerifyResult.OK


async def code_mail_failed(*, session: AsyncSession, email: str) -> bool:
    stmt = (
        select(col(EmailCode.mail_failed))
        .join(User, col(EmailCode.user_id) == User.id)
        .where(func.lower(User.email) == normalise_email(email))
        .where(col(EmailCode.pending_email).is_(None))
    )
    return bool((await session.execute(stmt)).scalar_one_or_none())


async def login(
    *, manager: UserManager, limiter: AuthLimiter, email: str, password: str, ip: str
) -> tuple[LoginResult, User | None]:
    """Check a password; failures count against the account and the address.

    The try takes its slot before the password is checked (so concurrent guesses cannot all
    pass the check), and a right password gives it back."""
    email = normalise_email(email)
    if not await limiter.login_attempt(email, ip):
        return LoginResult.RATE_LIMITED, None
    # fastapi-users reads only these two fields of its login form (timing-safe for unknown
    # addresses): plain values here, no HTTP form object in the service.
    credentials = Credentials(username=email, password=password[:1024])
    user = await manager.authenticate(cast(Any, credentials))
    if user is None or not user.is_active:
        return LoginResult.BAD_CREDENTIALS, None
    await limiter.login_succeeded(email, ip)
    if not user.is_verified:
        return LoginResult.NOT_VERIFIED, user
    return LoginResult.OK, user


async def note_failed_login(*, session: AsyncSession, email: str, origin: Origin) -> None:
    """Put a failed sign-in on the account's trail; an unknown email leaves no trace."""
    user = await user_by_email(session, email)
    if user is not None:
        await audit.record(session=session, user_id=user.id, kind="login_failed", origin=origin)


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


async def _password_ok(user: User, password: str) -> bool:
    ok, _ = await to_thread.run_sync(
        password_helper.verify_and_update, password, user.hashed_password
    )
    return bool(ok)


WRONG_PASSWORD = ("current_password", "Your current password is not correct.")


async def change_password(
    *,
    session: AsyncSession,
    manager: UserManager,
    user: User,
    current: str,
    new: str,
    origin: Origin,
) -> tuple[str, str] | None:
    """Change the password, end every session and any address change under way;
    (field, sentence) when it cannot be done."""
    if not await _password_ok(user, current):
        return WRONG_PASSWORD
    problem = password_problem(new, user.email)
    if problem:
        return "password", problem
    new_hash = await to_thread.run_sync(password_helper.hash, new)
    stamp = user.security_stamp + 1  # reset links mailed before no longer work
    await manager.user_db.update(user, {"hashed_password": new_hash, "security_stamp": stamp})
    await session.execute(delete(EmailCode).where(col(EmailCode.user_id) == user.id))
    await audit.add(session, user_id=user.id, kind="password_changed", origin=origin)
    await revoke_sessions(session, user)  # commits the event with it
    return None


async def request_email_change(
    *,
    session: AsyncSession,
    limiter: AuthLimiter,
    user: User,
    new_email: str,
    password: str,
    secret: str,
    origin: Origin,
) -> tuple[tuple[str, str] | None, list[MailJob]]:
    """Mail a code to the new address and a notice to the current one.

    The answer and the work are the same whether or not another account uses the address
    (a code is stored either way); only the code's mail is left out for a taken address.
    Returns (field, sentence) when refused, else the mail to send after the answer.
    """
    new_email = normalise_email(new_email)
    if not await _password_ok(user, password):
        return WRONG_PASSWORD, []
    if new_email == normalise_email(user.email):
        return ("email", "That is already your address."), []
    if not await limiter.email_change_allowed(str(user.id)):
        return ("email", "Too many address changes today. Try again tomorrow."), []
    owner = await user_by_email(session, new_email)
    await audit.add(
        session, user_id=user.id, kind="email_change_requested", origin=origin, detail=new_email
    )
    code = await issue_code(session=session, user=user, secret=secret, pending_email=new_email)
    jobs = [MailJob("email_change_notice", user.email, {"new_email": new_email})]
    if owner is None:
        jobs.append(MailJob("email_change_code", new_email, {"code": code}, user.id))
    return None, jobs


async def pending_email(*, session: AsyncSession, user: User) -> str | None:
    """The address waiting for its code, if a change is under way."""
    row = await _code_row(session, user, change=True)
    return row.pending_email if row is not None and row.expires_at > utcnow() else None


async def confirm_email_change(
    *,
    session: AsyncSession,
    limiter: AuthLimiter,
    user: User,
    code: str,
    secret: str,
    origin: Origin,
    keep: str | None,
) -> EmailChangeResult:
    """Switch to the new address with its code, then end every other session."""
    if not await limiter.code_attempt(user.email, origin.ip):
        return EmailChangeResult.RATE_LIMITED
    row = await _use_code(session, user, code, secret, change=True)
    if row is None:
        return EmailChangeResult.INVALID
    await limiter.code_succeeded(user.email, origin.ip)
    new_email = str(row.pending_email)
    if await user_by_email(session, new_email) is not None:
        await session.commit()  # the code is used up
        return EmailChangeResult.TAKEN
    user.email = new_email
    user.security_stamp += 1  # a reset link mailed to the old address no longer works
    await audit.add(session, user_id=user.id, kind="email_changed", origin=origin, detail=new_email)
    try:
        await revoke_sessions(session, user, keep=keep)  # commits the change with it
    except IntegrityError:  # taken at the same moment by another request
        await session.rollback()
        return EmailChangeResult.TAKEN
    return EmailChangeResult.OK


# Account mail that anyone's request can send to an address: at most 5 an hour per address
# (ratelimit.ACCOUNT_MAILS_PER_ADDRESS), counted here, after the answer went out, so the answer
# is the same for real, unknown and flooded addresses. A verification code is counted when it
# is made (see _new_code). The notice of an address change, asked for only by the signed-in
# owner (5 times a day at most), always goes out.
FLOOD_CAPPED = frozenset({"already_registered", "reset_password", "email_change_code"})


async def deliver(
    *,
    limiter: AuthLimiter,
    job: MailJob,
    queue: Callable[[MailJob], Awaitable[None]],
) -> None:
    """Count a flood-capped mail against its address, then put it on the job queue."""
    if job.template in FLOOD_CAPPED and not await limiter.account_mail_allowed(job.to):
        log.info("account mail held back: its address had its 5 this hour")
        return
    await queue(job)


async def send_account_mail(
    *,
    settings: Settings,
    maker: async_sessionmaker[AsyncSession],
    limiter: AuthLimiter,
    job: MailJob,
) -> bool:
    """Send one account mail (a job's work); remember whether a code mail failed, so the
    verify page can say the mail is delayed (and stop saying so once a retry got it out)."""
    code = job.context.get("code")
    if settings.dev and code:
        log.warning("development only: verification code for %s is %s", job.to, code)
    sent = await mail.send(
        settings, mail.build_message(settings, job.to, job.template, **job.context)
    )
    if job.code_user_id is not None:
        if not sent:
            await limiter.code_mail_failed(str(job.code_user_id))
        async with maker() as session:
            await session.execute(
                update(EmailCode)
                .where(col(EmailCode.user_id) == job.code_user_id)
                .values(mail_failed=not sent)
            )
            await session.commit()
    return sent


async def _new_code(session: AsyncSession, limiter: AuthLimiter, wanted: NewCode) -> MailJob | None:
    """Make and address a fresh code, unless the account had one less than a minute ago or the
    address had its 5 account mails this hour: then neither a mail nor a new code (the pending
    one keeps working), so nobody can keep a person from verifying by asking for codes."""
    user_id = wanted.user.id
    if not await limiter.code_gap_allowed(str(user_id)):
        return None
    if not await limiter.account_mail_allowed(wanted.to):
        log.info("code held back: its address had its 5 account mails this hour")
        return None
    code = await issue_code(session=session, user=wanted.user, secret=wanted.secret)
    context = {"code": code, **({"contested": "yes"} if wanted.contested else {})}
    return MailJob("code", wanted.to, context, user_id)


async def in_background(
    *,
    maker: async_sessionmaker[AsyncSession],
    limiter: AuthLimiter,
    action: Callable[[AsyncSession], Awaitable[MailJob | NewCode | None]],
    queue: Callable[[MailJob], Awaitable[None]],
) -> None:
    """Run an account action in its own session after the answer went out, then mail; a
    NewCode is made here, if the account and its address may get one now."""
    async with maker() as session:
        job = await action(session)
        if isinstance(job, NewCode):
            job = await _new_code(session, limiter, job)
    if job is not None:
        await deliver(limiter=limiter, job=job, queue=queue)


async def update_preferences(
    *, session: AsyncSession, user: User, changes: dict[str, object]
) -> None:
    """Store checked preferences (the schema validated each value); None means unchanged,
    but for reminder_time, where it means no reminder."""
    for name, value in changes.items():
        if name == "reminder_days" and isinstance(value, list):
            value = stored_days(value)
        if value is not None or name == "reminder_time":
            setattr(user, name, value)
    await session.commit()


async def delete_account(
    *, session: AsyncSession, user: User, password: str, media: "Storage | None" = None
) -> str | None:
    """Delete the user and, through ON DELETE CASCADE, every row they own; a sentence if refused.

    The audit trail goes with the account, so the deletion is logged (by id, not email).
    Their photo files (all under their id in `media`, else the configured storage) go
    after the commit."""
    if not await _password_ok(user, password):
        return "Your password is not correct."
    user_id = user.id
    await session.execute(delete(User).where(col(User.id) == user_id))
    await session.commit()
    from app.config import settings as configured
    from app.storage import delete_prefix, storage_for

    await to_thread.run_sync(delete_prefix, media or storage_for(configured), f"{user_id}/")
    log.info("account deleted", extra={"event": "account_deleted", "user_id": str(user_id)})
    return None
