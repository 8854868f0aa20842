"""Passkeys (WebAuthn, py_webauthn): discoverable credentials registered from the settings page
and used to sign in from /login without a password.

Each ceremony's challenge is stored here, single use (deleted as it is read) and short-lived;
every response is checked against it, our origin and our RP ID, and a credential's signature
counter. Adding a passkey signs out every other session; each change is audited and mailed.
"""

import json
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url
from webauthn.helpers.exceptions import InvalidAuthenticationResponse, InvalidRegistrationResponse
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from app.auth import hash_token, revoke_sessions
from app.mail import MailJob
from app.models import Passkey, User, WebAuthnChallenge
from app.models.base import utcnow
from app.services import audit
from app.services.audit import Origin
from app.services.twofactor import ISSUER, TwoFactorProblem, notice, passkeys

CHALLENGE_TTL = timedelta(minutes=5)
PASSKEY_NAME_MAX = 64
CREDENTIAL_JSON_MAX = 20_000


@dataclass(frozen=True)
class RelyingParty:
    """Who the browser signs for: the RP ID (a host name) and the origins it may say it is on."""

    rp_id: str
    origins: list[str]
    name: str = ISSUER


async def _store_challenge(
    session: AsyncSession, purpose: str, challenge: bytes, user_id: uuid.UUID | None
) -> str:
    handle = secrets.token_urlsafe(32)
    now = utcnow()
    await session.execute(delete(WebAuthnChallenge).where(col(WebAuthnChallenge.expires_at) <= now))
    session.add(
        WebAuthnChallenge(
            handle_hash=hash_token(handle),
            user_id=user_id,
            purpose=purpose,
            challenge=challenge,
            expires_at=now + CHALLENGE_TTL,
        )
    )
    await session.commit()
    return handle


async def _take_challenge(
    session: AsyncSession, handle: str, purpose: str, user_id: uuid.UUID | None
) -> bytes | None:
    """The challenge behind the handle, deleted as it is read: it works once."""
    if not handle or len(handle) > 200:
        return None
    stmt = (
        delete(WebAuthnChallenge)
        .where(
            col(WebAuthnChallenge.handle_hash) == hash_token(handle),
            col(WebAuthnChallenge.purpose) == purpose,
            col(WebAuthnChallenge.expires_at) > utcnow(),
        )
        .returning(col(WebAuthnChallenge.challenge), col(WebAuthnChallenge.user_id))
    )
    found = (await session.execute(stmt)).first()
    await session.commit()
    if found is None or found[1] != user_id:
        return None
    return bytes(found[0])


async def registration_options(
    *, session: AsyncSession, user: User, rp: RelyingParty
) -> tuple[str, dict[str, Any]]:
    """Options for navigator.credentials.create() (a discoverable credential, user verification
    preferred, the account's own passkeys excluded) and the handle of their challenge."""
    existing = await passkeys(session, user.id)
    options = generate_registration_options(
        rp_id=rp.rp_id,
        rp_name=rp.name,
        user_id=user.id.bytes,
        user_name=user.email,
        user_display_name=user.email,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED,
            user_verification=UserVerificationRequirement.PREFERRED,
        ),
        exclude_credentials=[
            PublicKeyCredentialDescriptor(id=base64url_to_bytes(key.credential_id))
            for key in existing
        ],
    )
    handle = await _store_challenge(session, "register", options.challenge, user.id)
    return handle, json.loads(options_to_json(options))


BAD_PASSKEY = TwoFactorProblem(
    "PASSKEY_INVALID", "passkey", "The passkey could not be checked. Try again."
)


def _transports(credential: dict[str, Any]) -> str:
    wanted = credential.get("response", {}).get("transports") or []
    known = {t.value for t in AuthenticatorTransport}
    return ",".join(t for t in wanted if isinstance(t, str) and t in known)[:200]


async def add_passkey(
    *,
    session: AsyncSession,
    user: User,
    handle: str,
    credential: dict[str, Any],
    name: str,
    rp: RelyingParty,
    origin: Origin,
    keep: str | None,
) -> tuple[Passkey, list[MailJob]]:
    """Check the browser's new credential against its challenge, origin and RP ID and keep it;
    every other session is signed out, a notice mailed."""
    name = " ".join(name.split())[:PASSKEY_NAME_MAX] or "Passkey"
    challenge = await _take_challenge(session, handle, "register", user.id)
    if challenge is None or len(json.dumps(credential)) > CREDENTIAL_JSON_MAX:
        raise BAD_PASSKEY
    try:
        verified = verify_registration_response(
            credential=credential,
            expected_challenge=challenge,
            expected_rp_id=rp.rp_id,
            expected_origin=rp.origins,
        )
    except (InvalidRegistrationResponse, ValueError, KeyError, TypeError) as exc:
        raise BAD_PASSKEY from exc
    key = Passkey(
        user_id=user.id,
        credential_id=bytes_to_base64url(verified.credential_id),
        public_key=verified.credential_public_key,
        sign_count=verified.sign_count,
        name=name,
        transports=_transports(credential),
    )
    session.add(key)
    await audit.add(session, user_id=user.id, kind="passkey_added", origin=origin, detail=name)
    try:
        await revoke_sessions(session, user, keep=keep)  # commits it all
    except IntegrityError as exc:  # the credential is already registered (unique id)
        await session.rollback()
        raise BAD_PASSKEY from exc
    await session.refresh(key)
    return key, [notice(user, f"A passkey named “{name}” was added to your account.")]


async def remove_passkey(
    *, session: AsyncSession, user: User, passkey_id: int, origin: Origin
) -> list[MailJob] | None:
    """Remove one of the user's passkeys; None when the user has no such passkey."""
    key = await session.get(Passkey, passkey_id)
    if key is None or key.user_id != user.id:
        return None
    name = key.name
    await session.delete(key)
    await audit.add(session, user_id=user.id, kind="passkey_removed", origin=origin, detail=name)
    await session.commit()
    return [notice(user, f"The passkey named “{name}” was removed from your account.")]


async def login_options(*, session: AsyncSession, rp: RelyingParty) -> tuple[str, dict[str, Any]]:
    """Options for navigator.credentials.get() with no account named: the browser offers the
    discoverable passkeys it holds for this RP."""
    options = generate_authentication_options(
        rp_id=rp.rp_id, user_verification=UserVerificationRequirement.PREFERRED
    )
    handle = await _store_challenge(session, "login", options.challenge, None)
    return handle, json.loads(options_to_json(options))


async def passkey_login(
    *, session: AsyncSession, handle: str, credential: dict[str, Any], rp: RelyingParty
) -> User | None:
    """The account whose passkey signed this login's challenge on our origin, or None."""
    challenge = await _take_challenge(session, handle, "login", None)
    raw_id = credential.get("rawId") or credential.get("id")
    if challenge is None or not isinstance(raw_id, str) or len(raw_id) > 1400:
        return None
    key = (
        await session.execute(select(Passkey).where(col(Passkey.credential_id) == raw_id))
    ).scalar_one_or_none()
    if key is None:
        return None
    user_handle = credential.get("response", {}).get("userHandle")
    try:
        if user_handle and base64url_to_bytes(user_handle) != key.user_id.bytes:
            return None
        verified = verify_authentication_response(
            credential=credential,
            expected_challenge=challenge,
            expected_rp_id=rp.rp_id,
            expected_origin=rp.origins,
            credential_public_key=key.public_key,
            credential_current_sign_count=key.sign_count,
        )
    except (InvalidAuthenticationResponse, ValueError, KeyError, TypeError):
        return None
    key.sign_count = verified.new_sign_count
    key.last_used_at = utcnow()
    user = await session.get(User, key.user_id)
    await session.commit()
    if user is None or not user.is_active or not user.is_verified:
        return None
    return user
