"""Every table, imported once so the shared metadata is complete (Alembic reads it)."""

from app.models.audit import AuditEvent
from app.models.base import Base
from app.models.category import Category
from app.models.email_code import EmailCode
from app.models.entry import Entry, EntryTag
from app.models.photo import Photo
from app.models.rate import ExchangeRate, ManualRate
from app.models.sent_mail import SentMail
from app.models.twofactor import (
    Passkey,
    PendingSignIn,
    RecoveryCode,
    TwoFactor,
    WebAuthnChallenge,
)
from app.models.user import AccessToken, User

metadata = Base.metadata

__all__ = [
    "AccessToken",
    "AuditEvent",
    "Category",
    "EmailCode",
    "Entry",
    "EntryTag",
    "ExchangeRate",
    "ManualRate",
    "Passkey",
    "PendingSignIn",
    "Photo",
    "RecoveryCode",
    "SentMail",
    "TwoFactor",
    "User",
    "WebAuthnChallenge",
    "metadata",
]
