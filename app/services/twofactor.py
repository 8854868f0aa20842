"""Two-step sign-in: authenticator codes (TOTP, RFC 6238), recovery codes, and the pending sign-in
between the password and the code (passkeys: app.services.passkeys).

- The TOTP secret is stored AES-GCM encrypted under a key derived from SECRET_KEY (HKDF-SHA256),
  bound to its account (the user id is the associated data).
- A code is accepted once: the newest accepted time step is stored and a code of that step or an
  older one is refused, by one conditional UPDATE (two racing requests cannot both pass).
- Every try takes its slot before it is judged: one of the sign-in attempt's 5 (a conditional
  UPDATE of the pending sign-in) and one of the account's 10 a day (app.ratelimit); a right code
  gives the daily one back. Past either, even a right code is refused (429).
- Recovery codes: ten, shown once, stored as HMACs, each spent by one conditional UPDATE.
"""

import base64
import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta
from enum import Enum

import pyotp
import segno
from anyio import to_thread
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.auth import hash_token, password_helper, revoke_sessions
from app.mail import MailJob
from app.models import Passkey, PendingSignIn, RecoveryCode, TwoFactor, User
from app.models.base import utcnow
from app.ratelimit import AuthLimiter
from app.services import Problem, audit
from app.services.audit import Origin

ISSUER = "SuccessDiary"
RECOVERY_CODES = 10
ATTEMPTS_PER_SIGN_IN = 5
PENDING_TTL = timedelta(minutes=10)
CHALLENGE_TTL = timedelta(minutes=5)
PASSKEY_NAME_MAX = 64
CREDENTIAL_JSON_MAX = 20_000


class TwoFactorProblem(Problem):
    """A change that cannot be made: a code for the API, the field and a sentence for a page."""

    def __init__(self, code: str, field: str, message: str) -> None:
        super().__init__(field, message)
        self.code = code


WRONG_PASSWORD = TwoFactorProblem(
    "INVALID_PASSWORD", "current_password", "Your current password is not correct."
)
WRONG_CODE = TwoFactorProblem(
    "INVALID_CODE", "code", "That code is not right. Enter the newest 6 digits from your app."
)
TOO_MANY = TwoFactorProblem(
    "TOO_MANY_ATTEMPTS", "code", "Too many wrong codes. Wait a while and try again."
)


class CodeResult(Enum):
    TOTP = "totp"
    RECOVERY = "recovery"
    BAD = "bad"
    RATE_LIMITED = "rate_limited"

    @property
    def ok(self) -> bool:
        return self in (CodeResult.TOTP, CodeResult.RECOVERY)


# --- the secret at rest ------------------------------------------------------------------


def _cipher(secret_key: str) -> AESGCM:
    key = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"successdiary totp secret v1"
    ).derive(secret_key.encode())
    return AESGCM(key)


def encrypt_secret(secret_key: str, user_id: uuid.UUID, secret: str) -> str:
    nonce = secrets.token_bytes(12)
    sealed = _cipher(secret_key).encrypt(nonce, secret.encode(), user_id.bytes)
    return base64.urlsafe_b64encode(nonce + sealed).decode()


def decrypt_secret(secret_key: str, user_id: uuid.UUID, stored: str) -> str | None:
    raw = base64.urlsafe_b64decode(stored.encode())
    try:
        return _cipher(secret_key).decrypt(raw[:12], raw[12:], user_id.bytes).decode()
    except (InvalidTag, ValueError):
        return None


# --- state -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Status:
    totp_enabled: bool
    recovery_left: int
    passkeys: list[Passkey]
    nudge: bool  # no second step yet and the nudge not dismissed


async def _row(session: AsyncSession, user: User) -> TwoFactor | None:
    return await session.get(TwoFactor, user.id, populate_existing=True)


async def totp_enabled(session: AsyncSession, user_id: uuid.UUID) -> bool:
    stmt = select(col(TwoFactor.totp_enabled)).where(col(TwoFactor.user_id) == user_id)
    return bool((await session.execute(stmt)).scalar_one_or_none())


async def recovery_left(session: AsyncSession, user_id: uuid.UUID) -> int:
    stmt = (
        select(func.count())
        .select_from(RecoveryCode)
        .where(col(RecoveryCode.user_id) == user_id, col(RecoveryCode.used_at).is_(None))
    )
    return int((await session.execute(stmt)).scalar_one())


async def passkeys(session: AsyncSession, user_id: uuid.UUID) -> list[Passkey]:
    stmt = select(Passkey).where(col(Passkey.user_id) == user_id).order_by(col(Passkey.id))
    return list((await session.execute(stmt)).scalars().all())


async def status(*, session: AsyncSession, user: User) -> Status:
    row = await _row(session, user)
    enabled = bool(row and row.totp_enabled)
    keys = await passkeys(session, user.id)
    return Status(
        totp_enabled=enabled,
        recovery_left=await recovery_left(session, user.id) if enabled else 0,
        passkeys=keys,
        nudge=not enabled and not keys and not (row and row.nudge_dismissed),
    )


async def dismiss_nudge(*, session: AsyncSession, user: User) -> None:
    row = await _row(session, user)
    if row is None:
        session.add(TwoFactor(user_id=user.id, nudge_dismissed=True))
    else:
        row.nudge_dismissed = True
    await session.commit()


async def _password_ok(user: User, password: str) -> bool:
    ok, _ = await to_thread.run_sync(
        password_helper.verify_and_update, password[:1024], user.hashed_password
    )
    return bool(ok)


def notice(user: User, change: str) -> MailJob:
    return MailJob("security_notice", user.email, {"change": change})


# --- TOTP --------------------------------------------------------------------------------


@dataclass(frozen=True)
class TotpSetup:
    secret: str
    otpauth_uri: str

    @property
    def qr_svg(self) -> str:
        """The otpauth URI as a QR code, drawn here as inline SVG (no image from elsewhere, and
        only presentation attributes, which the CSP's style-src allows)."""
        qr = segno.make(self.otpauth_uri, error="m")
        return str(qr.svg_inline(scale=4, border=2, dark="#0f172a", light="#ffffff", title=None))


async def setup_totp(
    *, session: AsyncSession, user: User, password: str, secret_key: str
) -> TotpSetup:
    """A new secret for the account, waiting for its first code (enable_totp)."""
    if not await _password_ok(user, password):
        raise WRONG_PASSWORD
    row = await _row(session, user)
    if row is not None and row.totp_enabled:
        raise TwoFactorProblem(
            "TOTP_ALREADY_ENABLED", "form", "Two-step sign-in with an app is already on."
        )
    secret = pyotp.random_base32()
    stored = encrypt_secret(secret_key, user.id, secret)
    if row is None:
        session.add(TwoFactor(user_id=user.id, totp_secret=stored))
    else:
        row.totp_secret, row.totp_last_step, row.updated_at = stored, 0, utcnow()
    await session.commit()
    uri = pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=ISSUER)
    return TotpSetup(secret, uri)


async def pending_setup(*, session: AsyncSession, user: User, secret_key: str) -> TotpSetup | None:
    """The secret set up but not yet enabled, to show its QR code again."""
    row = await _row(session, user)
    if row is None or row.totp_enabled or not row.totp_secret:
        return None
    secret = decrypt_secret(secret_key, user.id, row.totp_secret)
    if secret is None:
        return None
    uri = pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=ISSUER)
    return TotpSetup(secret, uri)


def _normal(code: str) -> str:
    return "".join(code.split()).replace("-", "").lower()[:64]


async def _totp_ok(
    session: AsyncSession, user_id: uuid.UUID, row: TwoFactor, code: str, secret_key: str
) -> bool:
    """The code of the previous, current or next 30-second step, newer than the newest accepted
    one: that step becomes the newest (in one conditional UPDATE, so a code works once)."""
    secret = decrypt_secret(secret_key, user_id, row.totp_secret or "")
    if secret is None or not (len(code) == 6 and code.isdigit()):
        return False
    totp = pyotp.TOTP(secret)
    now = totp.timecode(utcnow())
    step = next(
        (s for s in (now - 1, now, now + 1) if hmac.compare_digest(totp.generate_otp(s), code)),
        None,
    )
    if step is None:
        return False
    claimed = await session.execute(
        update(TwoFactor)
        .where(col(TwoFactor.user_id) == user_id, col(TwoFactor.totp_last_step) < step)
        .values(totp_last_step=step)
        .execution_options(synchronize_session=False)
    )
    return bool(claimed.rowcount)  # type: ignore[attr-defined]


def _recovery_hash(secret_key: str, user_id: uuid.UUID, code: str) -> str:
    message = f"recovery:{user_id}:{code}".encode()
    return hmac.new(secret_key.encode(), message, hashlib.sha256).hexdigest()


async def _recovery_ok(
    session: AsyncSession, user_id: uuid.UUID, code: str, secret_key: str
) -> bool:
    if len(code) != 10:
        return False
    spent = await session.execute(
        update(RecoveryCode)
        .where(
            col(RecoveryCode.user_id) == user_id,
            col(RecoveryCode.code_hash) == _recovery_hash(secret_key, user_id, code),
            col(RecoveryCode.used_at).is_(None),
        )
        .values(used_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return bool(spent.rowcount)  # type: ignore[attr-defined]


def _new_recovery_codes(session: AsyncSession, user_id: uuid.UUID, secret_key: str) -> list[str]:
    codes = [secrets.token_hex(5) for _ in range(RECOVERY_CODES)]
    for code in codes:
        session.add(
            RecoveryCode(user_id=user_id, code_hash=_recovery_hash(secret_key, user_id, code))
        )
    return [f"{code[:5]}-{code[5:]}" for code in codes]


async def enable_totp(
    *,
    session: AsyncSession,
    user: User,
    code: str,
    secret_key: str,
    origin: Origin,
    keep: str | None,
) -> tuple[list[str], list[MailJob]]:
    """Turn TOTP on with the first code from the app: ten new recovery codes (shown once),
    every other session signed out, a notice mailed."""
    row = await _row(session, user)
    if row is None or not row.totp_secret:
        raise TwoFactorProblem(
            "TOTP_NOT_SET_UP", "code", "Set up the authenticator app first (step 1)."
        )
    if row.totp_enabled:
        raise TwoFactorProblem(
            "TOTP_ALREADY_ENABLED", "code", "Two-step sign-in with an app is already on."
        )
    if not await _totp_ok(session, user.id, row, _normal(code), secret_key):
        raise WRONG_CODE  # nothing was changed
    await session.execute(delete(RecoveryCode).where(col(RecoveryCode.user_id) == user.id))
    codes = _new_recovery_codes(session, user.id, secret_key)
    await session.execute(
        update(TwoFactor)
        .where(col(TwoFactor.user_id) == user.id)
        .values(totp_enabled=True, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    await audit.add(session, user_id=user.id, kind="totp_enabled", origin=origin)
    await revoke_sessions(session, user, keep=keep)  # commits it all
    return codes, [notice(user, "Two-step sign-in with an authenticator app was turned on.")]


async def check_code(
    *,
    session: AsyncSession,
    limiter: AuthLimiter,
    user: User,
    code: str,
    ip: str,
    secret_key: str,
    pending: PendingSignIn | None = None,
) -> CodeResult:
    """Judge an authenticator or recovery code for the account, after taking its slots: the
    account's (10 wrong a day) and, on the sign-in page, the attempt's (5). A right code gives
    the account's back. The judgement is committed (the step or the recovery code is spent)."""
    uid = str(user.id)
    if not await limiter.otp_attempt(uid, ip):
        return CodeResult.RATE_LIMITED
    if pending is not None:
        claimed = await session.execute(
            update(PendingSignIn)
            .where(
                col(PendingSignIn.token_hash) == pending.token_hash,
                col(PendingSignIn.attempts) < ATTEMPTS_PER_SIGN_IN,
            )
            .values(attempts=col(PendingSignIn.attempts) + 1)
            .execution_options(synchronize_session=False)
        )
        await session.commit()
        if not claimed.rowcount:  # type: ignore[attr-defined]
            await limiter.otp_succeeded(uid, ip)  # nothing was judged
            return CodeResult.RATE_LIMITED
    row = await _row(session, user)
    normal = _normal(code)
    result = CodeResult.BAD
    if row is not None and row.totp_enabled:
        if await _totp_ok(session, user.id, row, normal, secret_key):
            result = CodeResult.TOTP
        elif await _recovery_ok(session, user.id, normal, secret_key):
            result = CodeResult.RECOVERY
    await session.commit()
    if result.ok:
        await limiter.otp_succeeded(uid, ip)
    return result


async def renew_recovery_codes(
    *, session: AsyncSession, user: User, password: str, secret_key: str, origin: Origin
) -> tuple[list[str], list[MailJob]]:
    """Ten new recovery codes (shown once); the old ones stop working."""
    if not await _password_ok(user, password):
        raise WRONG_PASSWORD
    if not await totp_enabled(session, user.id):
        raise TwoFactorProblem("TOTP_NOT_ENABLED", "form", "Two-step sign-in with an app is off.")
    await session.execute(delete(RecoveryCode).where(col(RecoveryCode.user_id) == user.id))
    codes = _new_recovery_codes(session, user.id, secret_key)
    await audit.add(session, user_id=user.id, kind="recovery_codes_renewed", origin=origin)
    await session.commit()
    change = "New recovery codes were made; the old ones no longer work."
    return codes, [notice(user, change)]


async def note_recovery_used(
    *, session: AsyncSession, user: User, origin: Origin
) -> tuple[int, list[MailJob]]:
    """A recovery code was spent: on the trail and mailed; how many remain."""
    left = await recovery_left(session, user.id)
    detail = f"{left} left"
    await audit.add(
        session, user_id=user.id, kind="recovery_code_used", origin=origin, detail=detail
    )
    await session.commit()
    change = f"A recovery code was used to sign in. {left} of your recovery codes are left."
    return left, [notice(user, change)]


async def disable_totp(
    *,
    session: AsyncSession,
    limiter: AuthLimiter,
    user: User,
    password: str,
    code: str,
    secret_key: str,
    origin: Origin,
) -> list[MailJob]:
    """Turn TOTP off with the password and a code (or a recovery code)."""
    if not await _password_ok(user, password):
        raise WRONG_PASSWORD
    if not await totp_enabled(session, user.id):
        raise TwoFactorProblem("TOTP_NOT_ENABLED", "form", "Two-step sign-in with an app is off.")
    result = await check_code(
        session=session, limiter=limiter, user=user, code=code, ip=origin.ip, secret_key=secret_key
    )
    if result is CodeResult.RATE_LIMITED:
        raise TOO_MANY
    if not result.ok:
        raise WRONG_CODE
    await session.execute(delete(RecoveryCode).where(col(RecoveryCode.user_id) == user.id))
    await session.execute(
        update(TwoFactor)
        .where(col(TwoFactor.user_id) == user.id)
        .values(totp_enabled=False, totp_secret=None, totp_last_step=0, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    await audit.add(session, user_id=user.id, kind="totp_disabled", origin=origin)
    await session.commit()
    return [notice(user, "Two-step sign-in with an authenticator app was turned off.")]


# --- the pending sign-in (between the password and the code) -------------------------------


async def start_pending(*, session: AsyncSession, user: User, next_path: str) -> str:
    """A pending sign-in for the account; the raw token for the browser's cookie."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    # Expired pending sign-ins (anyone's) go as a new one comes: the table stays small.
    await session.execute(delete(PendingSignIn).where(col(PendingSignIn.expires_at) <= now))
    session.add(
        PendingSignIn(
            token_hash=hash_token(token),
            user_id=user.id,
            next_path=next_path[:2048],
            expires_at=now + PENDING_TTL,
        )
    )
    await session.commit()
    return token


async def find_pending(
    *, session: AsyncSession, token: str | None
) -> tuple[PendingSignIn, User] | None:
    if not token or len(token) > 200:
        return None
    stmt = (
        select(PendingSignIn, User)
        .join(User, col(User.id) == col(PendingSignIn.user_id))
        .where(
            col(PendingSignIn.token_hash) == hash_token(token),
            col(PendingSignIn.expires_at) > utcnow(),
        )
    )
    found = (await session.execute(stmt)).first()
    if found is None or not found[1].is_active:
        return None
    return found[0], found[1]


async def end_pending(*, session: AsyncSession, pending: PendingSignIn) -> None:
    await session.execute(
        delete(PendingSignIn).where(col(PendingSignIn.token_hash) == pending.token_hash)
    )
    await session.commit()
