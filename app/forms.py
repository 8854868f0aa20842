"""Small helpers for HTML forms: read fields, check an email, answer with inline errors."""

from datetime import date
from typing import Any

from email_validator import EmailNotValidError, validate_email
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response

from app.schemas import TIMEZONES, parse_day
from app.templating import flash, render

MAX_FIELD = 1024


def email_problem(email: str) -> str | None:
    if not email:
        return "Enter your email address."
    if len(email) > 254:
        return "That email address is too long."
    try:
        validate_email(email, check_deliverability=False)
    except EmailNotValidError:
        return "Enter an email address like name@example.com."
    return None


def form_errors(
    request: Request,
    page: str,
    partial: str,
    errors: dict[str, str],
    values: dict[str, Any],
    **context: Any,
) -> Response:
    """The form again with its errors: the fragment to HTMX, the page otherwise (422 both)."""
    ctx = {"errors": errors, "values": values, **context}
    return render(request, page, ctx, partial=partial, status_code=422)


def clip(value: str) -> str:
    """Form fields are cut at a sane length before any work is done on them.

    A NUL can be in no stored value (PostgreSQL text refuses it): it becomes U+FFFD, so the
    value matches nothing and is refused like any other wrong one, never a 500.
    """
    return value[:MAX_FIELD].replace("\x00", "\ufffd")


def validation_errors(exc: ValidationError) -> dict[str, str]:
    """Pydantic's errors as {field: sentence}, the first per field, in our own words."""
    errors: dict[str, str] = {}
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else "form"
        message = error["msg"].removeprefix("Value error, ")
        if not error["msg"].startswith("Value error, "):  # pydantic's wording: use ours
            message = FRIENDLY.get(field, message)
        errors.setdefault(field, message)
    return errors


FRIENDLY = {
    "mood": "Choose a mood from 1 to 5.",
    "category_id": "Choose one of your categories.",
    "day": "Enter a date like 2026-11-20.",
    "amount": "Enter an amount like 12.50.",
    "date_from": "Enter a date like 2026-11-20.",
    "date_to": "Enter a date like 2026-11-20.",
}


def optional(value: object) -> str | None:
    """An empty form field means 'not given'."""
    text = str(value or "").strip()
    return text or None


def _zone_groups() -> list[tuple[str, list[tuple[str, str]]]]:
    """The zone names by region (Asia: Tokyo, ...), names without one under "Other" last."""
    groups: dict[str, list[tuple[str, str]]] = {}
    for name in sorted(TIMEZONES):
        region, slash, place = name.partition("/")
        label = place.replace("_", " ") if slash else name
        groups.setdefault(region if slash else "Other", []).append((name, label))
    return sorted(groups.items(), key=lambda item: (item[0] == "Other", item[0]))


# For the time-zone pickers (<optgroup> per region): one list of ~600 names is no picker.
TIMEZONE_GROUPS = _zone_groups()


def timezone_problem(zone: str) -> str | None:
    """A zone a browser sent (or a person chose) that is not on our list, in plain words."""
    if zone and zone not in TIMEZONES:
        return f"{zone[:64]!r} is not a time zone we know. Choose yours from the list."
    return None


def query_day(request: Request, value: str | None) -> tuple[date | None, int]:
    """A date from a page's query string, and the status to answer with: 422 when it is not
    a date in the accepted range, said in a message on the page (shown for the default dates)."""
    if not value:
        return None, 200
    try:
        return parse_day(value[:40]), 200
    except ValueError as exc:
        flash(request, str(exc), "error")
        return None, 422
