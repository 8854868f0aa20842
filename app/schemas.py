"""Request and response bodies of the JSON API (pydantic), with examples for /docs."""

import re
import uuid
import zoneinfo
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from babel.numbers import list_currencies
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    field_validator,
    model_validator,
)

from app.services.text import label_problem, text_problem

TITLE_MAX = 200
BODY_MAX = 100_000
CATEGORY_NAME_MAX = 50
CURRENCIES = frozenset(list_currencies())
TIMEZONES = frozenset(zoneinfo.available_timezones())
# Row ids are INTEGER columns: a larger number can name no row, and must not reach the driver.
ID_MAX = 2_147_483_647
RowId = Annotated[int, Field(ge=1, le=ID_MAX)]
# One range for every date the app accepts (entries, filters, stats, review, print, imports):
# wide enough for any diary, narrow enough that no date arithmetic near it can overflow.
DAY_MIN, DAY_MAX = date(1900, 1, 1), date(2999, 12, 31)
DAY_RANGE = (
    f"Use a date between {DAY_MIN.year} and {DAY_MAX.year} "
    f"({DAY_MIN.isoformat()} to {DAY_MAX.isoformat()})."
)


def day_problem(value: date) -> str | None:
    """Why a date is outside the range the app accepts, or None."""
    return None if DAY_MIN <= value <= DAY_MAX else DAY_RANGE


def _in_range(value: date) -> date:
    problem = day_problem(value)
    if problem:
        raise ValueError(problem)
    return value


def parse_day(value: str) -> date:
    """A YYYY-MM-DD date inside the range; ValueError with a sentence otherwise."""
    try:
        day = date.fromisoformat(value.strip())
    except ValueError:
        raise ValueError("Enter a date like 2026-11-20.") from None
    return _in_range(day)


def _year_in_range(value: int) -> int:
    if not DAY_MIN.year <= value <= DAY_MAX.year:
        raise ValueError(DAY_RANGE)
    return value


Day = Annotated[date, AfterValidator(_in_range)]
Year = Annotated[int, AfterValidator(_year_in_range)]


def _problem(description: str) -> dict[str, Any]:
    detail = {
        "type": "object",
        "properties": {"detail": {"type": "string"}},
        "required": ["detail"],
    }
    return {"description": description, "content": {"application/json": {"schema": detail}}}


# A body the server cannot even parse (not UTF-8 JSON, a broken multipart form) gets 400.
UNREADABLE_BODY = _problem(
    "The body could not be read: not UTF-8 JSON, or a broken multipart form."
)
SIGNED_OUT = _problem("UNAUTHORIZED: no valid session cookie or bearer token.")


def validation_error(where: str, field: str, message: str) -> dict[str, Any]:
    """One error of a 422, in FastAPI's own shape (the one the API documents)."""
    return {"loc": [where, field], "msg": message, "type": "value_error"}


def document_common_answers(openapi: dict[str, Any]) -> dict[str, Any]:
    """Add the answers FastAPI leaves out: 400 where a body is read, 401 where a session is."""
    for operations in openapi.get("paths", {}).values():
        for operation in operations.values():
            if "requestBody" in operation:
                operation["responses"].setdefault("400", UNREADABLE_BODY)
            if operation.get("security"):
                operation["responses"].setdefault("401", SIGNED_OUT)
    return openapi


class Email(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"email": "ada@example.com"}]})

    email: EmailStr = Field(max_length=254)


class Register(Email):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"email": "ada@example.com", "password": "quiet harbour lamp"}]
        }
    )

    password: str = Field(max_length=1024)


class Code(BaseModel):
    """The 6-digit code from the email (confirms a new address on its own)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"code": "042917"}]})

    code: str = Field(pattern=r"^\s*\d{6}\s*$")


class Verify(Code, Email):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"email": "ada@example.com", "code": "042917"}]}
    )


class ResetPassword(BaseModel):
    token: str = Field(max_length=2048)
    password: str = Field(max_length=1024)


class Accepted(BaseModel):
    status: str = "accepted"
    message: str


class UserRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    email: str
    is_verified: bool
    created_at: datetime


class UserUpdate(BaseModel):
    """A new password or a new email, with the current password. With a `password` this is a
    password change and `email` is ignored, as is anything else in the body."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"current_password": "quiet harbour lamp", "password": "bright copper kettle"},
                {"current_password": "quiet harbour lamp", "email": "ada@example.org"},
            ]
        }
    )

    current_password: str = Field(max_length=1024)
    password: str | None = Field(default=None, max_length=1024)
    email: EmailStr | None = Field(default=None, max_length=254)

    @model_validator(mode="after")
    def _one_change(self) -> "UserUpdate":
        if self.password is None and self.email is None:
            raise ValueError("Send a new `password` or a new `email`.")
        return self


class ActivityEvent(BaseModel):
    """One account event, as "recent activity" on /settings shows it."""

    model_config = ConfigDict(from_attributes=True)

    kind: str = Field(description="login, login_failed, logout, password_changed, ...")
    summary: str = Field(description="In words: `Signed in from 203.0.113.7`.")
    ip: str
    device: str = Field(description="Browser and system from the User-Agent: `Firefox on Linux`.")
    created_at: datetime
    local_time: str = Field(description="`created_at` in your time zone.")
    ago: str = Field(description="`2 hours ago`.")


class Activity(BaseModel):
    other_sessions: int = Field(description="Sessions signed in besides this one.")
    items: list[ActivityEvent] = Field(description="The newest events first (at most 20).")


class SessionsRevoked(BaseModel):
    revoked: int = Field(description="How many other sessions were signed out.")


class Token(BaseModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105 (the OAuth2 token type, not a secret)


# --- The diary --------------------------------------------------------------------------

ENTRY_EXAMPLE: dict[str, Any] = {
    "day": "2026-11-20",
    "title": "Closed the Henderson deal",
    "body": "Six weeks of work. The **follow-up call** did it. #sales",
    "category_id": 1,
    "mood": 5,
    "tags": ["deal"],
    "amount": "12500.00",
    "currency": "EUR",
}


def _clean_text(value: str) -> str:
    problem = text_problem(value)
    if problem:
        raise ValueError(problem)
    return value


def _title(value: str) -> str:
    value = _clean_text(value).strip()
    if not value:
        raise ValueError("Give the win a title.")
    if len(value) > TITLE_MAX:
        raise ValueError(f"Use at most {TITLE_MAX} characters for the title ({len(value)} now).")
    return value


def _body(value: str) -> str:
    if len(value) > BODY_MAX:
        raise ValueError(f"Use at most {BODY_MAX:,} characters for the text ({len(value):,} now).")
    return _clean_text(value).replace("\r\n", "\n")


def _currency(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    code = value.strip().upper()
    if code not in CURRENCIES:
        raise ValueError(f"{code[:10]!r} is not an ISO 4217 currency code (like EUR or USD).")
    return code


class EntryFields(BaseModel):
    """Fields shared by creating and changing an entry (all checked the same way)."""

    model_config = ConfigDict(extra="ignore")

    day: Day | None = Field(default=None, description="Defaults to today in your time zone.")
    title: str | None = None
    body: str | None = None
    category_id: RowId | None = None
    mood: int | None = Field(default=None, ge=1, le=5)
    tags: list[str] | None = Field(default=None, max_length=100)
    amount: Decimal | None = Field(default=None, max_digits=18, decimal_places=4)
    currency: str | None = None

    _check_title = field_validator("title")(lambda v: None if v is None else _title(v))
    _check_body = field_validator("body")(lambda v: None if v is None else _body(v))
    _check_currency = field_validator("currency")(_currency)


class EntryCreate(EntryFields):
    model_config = ConfigDict(extra="ignore", json_schema_extra={"examples": [ENTRY_EXAMPLE]})

    title: str
    _check_title = field_validator("title")(_title)


class EntryUpdate(EntryFields):
    """Only the fields sent change; send null to clear category, mood or money."""

    model_config = ConfigDict(extra="ignore", json_schema_extra={"examples": [{"mood": 4}]})


class CategoryRef(BaseModel):
    id: int
    name: str
    colour: str


class PhotoRead(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 7,
                    "url": "/photos/7/3f2a9c0d1e8b7a6c5d4e.jpg",
                    "thumbnail_url": "/photos/7/3f2a9c0d1e8b7a6c5d4e-thumb.webp",
                    "width": 4032,
                    "height": 3024,
                    "content_type": "image/jpeg",
                    "bytes": 2811520,
                    "alt": "Crossing the finish line",
                    "position": 0,
                }
            ]
        }
    )

    id: int
    url: str = Field(description="The image (only its owner may fetch it); changes with its bytes.")
    thumbnail_url: str = Field(description="A WebP at most 480 pixels on its longer side.")
    width: int
    height: int
    content_type: str = Field(description="image/jpeg, image/png or image/webp")
    bytes: int
    alt: str = Field(description="Alt text; defaults to the win's title.")
    position: int = Field(0, description="Its place among the win's photos, 0 first.")


class PhotoUpdate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"alt": "The medal, close up", "position": 0}]},
    )

    alt: str | None = Field(None, max_length=500)
    position: int | None = Field(None, ge=0, le=9, description="Move it here (0 first).")


class EntryRead(BaseModel):
    id: int
    day: date
    title: str
    body: str
    body_html: str = Field(description="The body as sanitised HTML.")
    category: CategoryRef | None
    mood: int | None
    tags: list[str]
    amount: Decimal | None
    currency: str | None
    created_at: datetime
    updated_at: datetime
    photos: list[PhotoRead] = Field(default_factory=list, description="In their order.")


class EntryPage(BaseModel):
    items: list[EntryRead]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null at the end."
    )


def category_name(value: str) -> str:
    """A category name as stored: no control or invisible formatting characters (a
    right-to-left override would show another name than the one kept), runs of spaces as one,
    so names that differ only by spaces or case are the same name (compared lower-cased)."""
    value = " ".join(_clean_text(value).split())
    problem = label_problem(value)
    if problem:
        raise ValueError(problem)
    if not value:
        raise ValueError("Give the category a name.")
    if len(value) > CATEGORY_NAME_MAX:
        raise ValueError(f"Use at most {CATEGORY_NAME_MAX} characters for the name.")
    return value


def _colour(value: str) -> str:
    if not re.fullmatch(r"#[0-9a-fA-F]{6}", value.strip()):
        raise ValueError("Use a colour like #2563eb.")
    return value.strip().lower()


class CategoryCreate(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"name": "Sport", "colour": "#16a34a"}]}
    )

    name: str
    colour: str | None = Field(
        default=None, description="Default: the palette colour your categories use least."
    )
    _check_name = field_validator("name")(category_name)
    _check_colour = field_validator("colour")(lambda v: None if v is None else _colour(v))


class CategoryUpdate(BaseModel):
    name: str | None = None
    colour: str | None = None
    merge_into: RowId | None = Field(
        default=None, description="Move every entry to this category and delete this one."
    )
    _check_name = field_validator("name")(lambda v: None if v is None else category_name(v))
    _check_colour = field_validator("colour")(lambda v: None if v is None else _colour(v))


class CategoryRead(CategoryRef):
    entry_count: int = 0


def stored_days(days: list[int]) -> str:
    """Reminder weekdays as the user row keeps them: "12345" for Monday to Friday."""
    return "".join(str(d) for d in sorted(set(days)))


class Preferences(BaseModel):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "timezone": "Europe/Paris",
                    "week_start": 0,
                    "theme": "system",
                    "base_currency": "EUR",
                    "reminder_time": "20:30",
                    "reminder_days": [1, 2, 3, 4, 5],
                    "digest": "weekly",
                }
            ]
        },
    )

    timezone: str
    week_start: Literal[0, 6] = Field(description="0: weeks start on Monday, 6: on Sunday.")
    theme: Literal["light", "dark", "system"]
    base_currency: str
    reminder_time: str | None = Field(
        default=None,
        description='A reminder at "HH:MM" in your time zone on days without a win; null: off.',
    )
    reminder_days: list[int] = Field(
        default=[1, 2, 3, 4, 5, 6, 7],
        description="ISO weekdays of the reminder: 1 Monday, 7 Sunday.",
    )
    digest: Literal["off", "weekly", "monthly"] = Field(
        default="off",
        description="A digest of your wins on the morning your week starts, or on the 1st.",
    )

    @field_validator("reminder_days", mode="before")
    @classmethod
    def _stored_days(cls, value: object) -> object:
        return [int(d) for d in value] if isinstance(value, str) else value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        if value not in TIMEZONES:
            raise ValueError(f"{value[:64]!r} is not a time zone name like Europe/Paris.")
        return value

    _check_currency = field_validator("base_currency")(
        lambda v: _currency(v) or _raise("Choose a currency.")
    )


REMINDER_TIME = re.compile(r"([01]\d|2[0-3]):[0-5]\d")


def _reminder_time(value: str | None) -> str | None:
    if value is not None and not REMINDER_TIME.fullmatch(value):
        raise ValueError('Give the time as "HH:MM" from 00:00 to 23:59, or null for no reminder.')
    return value


def _reminder_days(value: list[int] | None) -> list[int] | None:
    if value is None:
        return None
    if not value or any(d < 1 or d > 7 for d in value):
        raise ValueError("Give one or more ISO weekdays, 1 (Monday) to 7 (Sunday).")
    return sorted(set(value))


class PreferencesUpdate(BaseModel):
    timezone: str | None = None
    week_start: Literal[0, 6] | None = None
    theme: Literal["light", "dark", "system"] | None = None
    base_currency: str | None = None
    reminder_time: str | None = Field(default=None, description='"HH:MM", or null: no reminder.')
    reminder_days: list[int] | None = Field(default=None, max_length=7)
    digest: Literal["off", "weekly", "monthly"] | None = None
    _check_time = field_validator("reminder_time")(_reminder_time)
    _check_days = field_validator("reminder_days")(_reminder_days)
    _check_zone = field_validator("timezone")(
        lambda v: None if v is None else Preferences._known_zone(v)
    )
    _check_currency = field_validator("base_currency")(_currency)


def _raise(message: str) -> str:
    raise ValueError(message)


class DeleteAccount(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"password": "quiet harbour lamp"}]})

    password: str = Field(max_length=1024)


# --- Money (app/services/money.py) ---------------------------------------------------------

Money = Annotated[Decimal, Field(description="A decimal number, sent as a string.")]


class CurrencyAmount(BaseModel):
    currency: str = Field(description="ISO 4217 code of the wins' own currency.")
    amount: Money
    count: int


class MoneyCategory(BaseModel):
    category_id: int | None
    name: str
    colour: str
    total: Money = Field(description="In the base currency, rounded to its minor units.")
    count: int = Field(description="Wins with an amount, converted or not.")
    amounts: list[CurrencyAmount] = Field(description="What was converted, as entered.")
    unconverted: list[CurrencyAmount] = Field(description="Amounts with no rate: not in total.")


class MoneyPeriod(BaseModel):
    start: date
    total: Money
    count: int
    rate_date: date | None = Field(description="The latest ECB day whose rates were used.")
    categories: list[MoneyCategory]
    unconverted: list[CurrencyAmount]


_MONEY_CATEGORY_EXAMPLE: dict[str, Any] = {
    "category_id": 4,
    "name": "Work",
    "colour": "#2563eb",
    "total": "1234.55",
    "count": 3,
    "amounts": [
        {"currency": "EUR", "amount": "1000.00", "count": 1},
        {"currency": "USD", "amount": "300.00", "count": 1},
    ],
    "unconverted": [{"currency": "XOF", "amount": "5000", "count": 1}],
}
_MONEY_EXAMPLE: dict[str, Any] = {
    "base_currency": "CHF",
    "period": "month",
    "date_from": "2026-03-01",
    "date_to": "2026-03-31",
    "total": "1234.55",
    "count": 3,
    "rate_date": "2026-03-27",
    "rates_date": "2026-03-31",
    "categories": [_MONEY_CATEGORY_EXAMPLE],
    "unconverted": [{"currency": "XOF", "amount": "5000", "count": 1}],
    "periods": [
        {
            "start": "2026-03-01",
            "total": "1234.55",
            "count": 3,
            "rate_date": "2026-03-27",
            "categories": [_MONEY_CATEGORY_EXAMPLE],
            "unconverted": [{"currency": "XOF", "amount": "5000", "count": 1}],
        }
    ],
}


class MoneyStats(BaseModel):
    """Money of your wins in your base currency, per period and per category."""

    model_config = ConfigDict(json_schema_extra={"examples": [_MONEY_EXAMPLE]})

    base_currency: str
    period: Literal["day", "week", "month"]
    date_from: date
    date_to: date
    total: Money = Field(description="Everything converted, in the base currency.")
    count: int
    rate_date: date | None = Field(description="The latest ECB day whose rates were used.")
    rates_date: date | None = Field(description="The latest ECB day stored (null: no rates).")
    categories: list[MoneyCategory] = Field(description="The whole range, by category.")
    unconverted: list[CurrencyAmount] = Field(
        description="Amounts in currencies with no rate (ECB or manual): counted apart."
    )
    periods: list[MoneyPeriod] = Field(description="Every period of the range, empty ones too.")


class ManualRateWrite(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"rate": "655.957"}]})

    rate: Decimal = Field(
        gt=0, max_digits=20, decimal_places=10, description="Units of the currency per euro."
    )


class ManualRateRead(BaseModel):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {"currency": "XOF", "rate": "655.957", "updated_at": "2026-03-01T10:00:00Z"}
            ]
        },
    )

    currency: str
    rate: Money = Field(description="Units of the currency per euro.")
    updated_at: datetime


def manual_currency(value: str) -> str:
    """A currency a manual rate may be set for: ISO 4217, and not the euro itself."""
    code = _currency(value)
    if code is None:
        raise ValueError("Name a currency, like XOF.")
    if code == "EUR":
        raise ValueError("The euro is the reference currency: its rate is always 1.")
    return code
