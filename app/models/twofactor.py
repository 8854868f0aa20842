"""Second factors: an authenticator app (TOTP), one-time recovery codes and passkeys, plus the
short-lived server-side state the second step and WebAuthn ceremonies need."""

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, LargeBinary, false
from sqlmodel import Field, SQLModel

from app.models.base import GUID, TIMESTAMPAware, utcnow


class TwoFactor(SQLModel, table=True):
    """One row per account that ever started a second step (or dismissed the nudge)."""

    __tablename__ = "two_factor"

    user_id: uuid.UUID = Field(
        sa_type=GUID, foreign_key="user.id", ondelete="CASCADE", primary_key=True
    )
    # The TOTP secret, AES-GCM encrypted under a key derived from SECRET_KEY (services.twofactor).
    totp_secret: str | None = Field(default=None, max_length=255)
    totp_enabled: bool = Field(default=False, sa_column_kwargs={"server_default": false()})
    # The newest accepted 30-second time step: a code of that step or an older one is refused.
    totp_last_step: int = Field(
        default=0, sa_type=BigInteger, sa_column_kwargs={"server_default": "0"}
    )
    nudge_dismissed: bool = Field(default=False, sa_column_kwargs={"server_default": false()})
    updated_at: datetime = Field(default_factory=utcnow, sa_type=TIMESTAMPAware(timezone=True))


class RecoveryCode(SQLModel, table=True):
    """A one-time code, stored as an HMAC; used_at set the moment it is spent."""

    __tablename__ = "recovery_code"

    id: int | None = Field(default=None, primary_key=True)
    user_id: uuid.UUID = Field(sa_type=GUID, foreign_key="user.id", ondelete="CASCADE", index=True)
    code_hash: str = Field(max_length=64)
    used_at: datetime | None = Field(default=None, sa_type=TIMESTAMPAware(timezone=True))


class Passkey(SQLModel, table=True):
    """A WebAuthn credential (discoverable), with its public key and signature counter."""

    __tablename__ = "passkey"

    id: int | None = Field(default=None, primary_key=True)
    user_id: uuid.UUID = Field(sa_type=GUID, foreign_key="user.id", ondelete="CASCADE", index=True)
    credential_id: str = Field(max_length=1400, unique=True)  # base64url, at most 1023 bytes
    public_key: bytes = Field(sa_type=LargeBinary)
    sign_count: int = Field(default=0, sa_type=BigInteger)
    name: str = Field(max_length=64)
    transports: str = Field(default="", max_length=200)
    created_at: datetime = Field(default_factory=utcnow, sa_type=TIMESTAMPAware(timezone=True))
    last_used_at: datetime | None = Field(default=None, sa_type=TIMESTAMPAware(timezone=True))


class PendingSignIn(SQLModel, table=True):
    """A password step passed, waiting for its code: the cookie holds the raw token, the row only
    its SHA-256; 5 wrong codes and it is dead, 10 minutes and it is gone."""

    __tablename__ = "pending_sign_in"

    token_hash: str = Field(max_length=64, primary_key=True)
    user_id: uuid.UUID = Field(sa_type=GUID, foreign_key="user.id", ondelete="CASCADE", index=True)
    next_path: str = Field(default="/", max_length=2048)
    attempts: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    expires_at: datetime = Field(sa_type=TIMESTAMPAware(timezone=True))


class WebAuthnChallenge(SQLModel, table=True):
    """A challenge handed to the browser for one ceremony: single use, short-lived."""

    __tablename__ = "webauthn_challenge"

    handle_hash: str = Field(max_length=64, primary_key=True)
    user_id: uuid.UUID | None = Field(
        default=None, sa_type=GUID, foreign_key="user.id", ondelete="CASCADE", index=True
    )
    purpose: str = Field(max_length=16)  # "register" or "login"
    challenge: bytes = Field(sa_type=LargeBinary)
    expires_at: datetime = Field(sa_type=TIMESTAMPAware(timezone=True))
