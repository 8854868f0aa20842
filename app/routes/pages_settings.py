"""Settings page: preferences, password and email changes, recent activity and sessions."""

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from pydantic import ValidationError
from starlette.responses import Response

from app.auth import session_cookie, start_session
from app.deps import LimiterDep, PageUser, SessionDep, SettingsDep, StrategyDep, UserManagerDep
from app.forms import TIMEZONE_GROUPS, clip, email_problem, validation_errors
from app.htmx import is_htmx, local_path, redirect
from app.models import User
from app.models.base import utcnow
from app.schemas import CURRENCIES, ManualRateWrite, PreferencesUpdate, manual_currency
from app.services import accounts, audit, habits, money, twofactor
from app.templating import flash, render
from app.web import mail_after, origin

router = APIRouter(include_in_schema=False)
CURRENCY_CHOICES = sorted(CURRENCIES)
Field = Annotated[str, Form()]
ERRORS = (
    "errors",
    "pref_errors",
    "delete_errors",
    "email_errors",
    "confirm_errors",
    "rate_errors",
    "habit_errors",
)
CODE_ERRORS = {
    accounts.EmailChangeResult.INVALID: "That code is not right or has expired. "
    "Check the latest email, or ask for a new code above.",
    accounts.EmailChangeResult.TAKEN: "Another account now uses that address. Choose another.",
    accounts.EmailChangeResult.RATE_LIMITED: "Too many attempts. Wait a while and try again.",
}


def _token(request: Request) -> str:
    return request.cookies.get(session_cookie.cookie_name, "")


async def _settings(request: Request, user: User, session: SessionDep, **ctx: Any) -> Response:
    lifetime = request.app.state.settings.session_lifetime_seconds
    ctx = {
        "user": user,
        "errors": {},
        "values": {},
        "timezone_groups": TIMEZONE_GROUPS,
        "currencies": CURRENCY_CHOICES,
        "activity": await audit.recent(session=session, user=user),
        "other_sessions": await audit.other_sessions(
            session=session, user=user, keep=_token(request), lifetime=lifetime
        ),
        "pending_email": await accounts.pending_email(session=session, user=user),
        "manual_rates": await money.manual_rates(session=session, user=user),
        "twofactor": await twofactor.status(session=session, user=user),
        **ctx,
    }
    return render(
        request,
        "settings/page.html",
        ctx,
        partial=ctx.pop("partial", None),
        status_code=422 if any(ctx.get(k) for k in ERRORS) else 200,
    )


@router.get("/settings")
async def settings_page(request: Request, user: PageUser, session: SessionDep) -> Response:
    return await _settings(request, user, session)


@router.post("/settings/preferences")
async def save_preferences(request: Request, user: PageUser, session: SessionDep) -> Response:
    form = await request.form()
    fields = ("timezone", "week_start", "theme", "base_currency")
    values: dict[str, Any] = {name: str(form.get(name) or "")[:64] for name in fields}
    if values["week_start"].isdigit():
        values["week_start"] = int(values["week_start"])
    cleaned = {k: v or None for k, v in values.items()}
    return await _save(
        request, user, session, cleaned, "pref_errors", "preferences", "Preferences saved."
    )


async def _save(
    request: Request,
    user: User,
    session: Any,
    values: dict[str, Any],
    errors: str,
    form: str,
    saved: str,
) -> Response:
    """Check preference values and store them, or show their form again with why (422)."""
    try:
        changes = PreferencesUpdate.model_validate(values)
    except ValidationError as exc:
        return await _settings(
            request,
            user,
            session,
            partial=f"settings/_{form}_form.html",
            **{errors: validation_errors(exc)},
        )
    await accounts.update_preferences(
        session=session, user=user, changes=changes.model_dump(exclude_unset=True)
    )
    flash(request, saved)
    return redirect(request, "/settings" if form == "preferences" else "/settings#habits")


@router.post("/settings/habits")
async def save_habits(request: Request, user: PageUser, session: SessionDep) -> Response:
    """Reminder time (empty: off), its weekdays and the digest."""
    form = await request.form()
    values: dict[str, Any] = {
        "reminder_time": str(form.get("reminder_time") or "")[:5] or None,
        "reminder_days": [str(d)[:1] for d in form.getlist("reminder_days")][:7],
        "digest": str(form.get("digest") or "off")[:8],
    }
    return await _save(request, user, session, values, "habit_errors", "habits", "Reminders saved.")


@router.post("/settings/digest/test")
async def send_test_digest(request: Request, user: PageUser, session: SessionDep) -> Response:
    try:
        job = await habits.queue_test_digest(session=session, user=user, now=utcnow())
    except habits.HabitsError as exc:
        flash(request, str(exc))
        return redirect(request, "/settings#habits")
    await request.app.state.jobs.queue_scheduled(job)
    flash(request, "A test digest is on its way: it arrives within a minute.")
    return redirect(request, "/settings#habits")


@router.post("/settings/rates")
async def save_manual_rate(
    request: Request, user: PageUser, session: SessionDep, currency: Field = "", rate: Field = ""
) -> Response:
    """A manual exchange rate (units of the currency per euro) for a currency the ECB does
    not publish; the same checks as PUT /api/v1/rates/manual/{currency}."""
    values = {"currency": clip(currency)[:10], "rate": clip(rate)[:40]}
    errors: dict[str, str] = {}
    try:
        code = manual_currency(values["currency"])
    except ValueError as exc:
        errors["currency"] = str(exc)
    try:
        value = ManualRateWrite.model_validate({"rate": values["rate"].replace(",", ".")}).rate
    except ValidationError:
        errors["rate"] = "Enter how many units one euro buys, above 0, like 655.957."
    if errors:
        return await _settings(request, user, session, rate_errors=errors, rate_values=values)
    await money.set_manual_rate(session=session, user=user, currency=code, rate=value)
    flash(request, f"Rate for {code} saved.")
    return redirect(request, "/settings#rates")


@router.post("/settings/rates/delete")
async def delete_manual_rate(
    request: Request, user: PageUser, session: SessionDep, currency: Field = ""
) -> Response:
    code = clip(currency)[:3].upper()
    if await money.delete_manual_rate(session=session, user=user, currency=code):
        flash(request, f"Rate for {code} removed.")
    return redirect(request, "/settings#rates")


@router.post("/settings/theme")
async def save_theme(
    request: Request, user: PageUser, session: SessionDep, theme: Field = ""
) -> Response:
    """The footer's theme buttons: the choice follows the account to every device."""
    if theme in ("light", "dark", "system"):
        await accounts.update_preferences(session=session, user=user, changes={"theme": theme})
    return redirect(
        request,
        local_path(
            request.headers.get("referer", "").removeprefix(request.app.state.settings.origin),
            "/settings",
        ),
    )


@router.post("/settings/password")
async def change_password(
    request: Request,
    user: PageUser,
    session: SessionDep,
    manager: UserManagerDep,
    strategy: StrategyDep,
    current_password: Field = "",
    password: Field = "",
    confirm: Field = "",
) -> Response:
    errors: dict[str, str] = {}
    if clip(password) != clip(confirm):
        errors["confirm"] = "The two new passwords are not the same."
    else:
        problem = await accounts.change_password(
            session=session,
            manager=manager,
            user=user,
            current=clip(current_password),
            new=clip(password),
            origin=origin(request),
        )
        if problem:
            errors = dict([problem])
    if errors:
        return await _settings(
            request, user, session, errors=errors, partial="settings/_password_form.html"
        )
    flash(request, "Password changed. Every other device has been signed out.")
    response = redirect(request, "/settings")
    await start_session(response, strategy, user)
    return response


@router.post("/settings/delete")
async def delete_account(
    request: Request, user: PageUser, session: SessionDep, password: Field = ""
) -> Response:
    problem = await accounts.delete_account(
        session=session, user=user, password=clip(password), media=request.app.state.media
    )
    if problem:
        return await _settings(
            request,
            user,
            session,
            delete_errors={"password": problem},
            partial="settings/_delete_form.html",
        )
    flash(request, "Your account and everything in it are deleted. Thank you for writing with us.")
    response = redirect(request, "/")
    logout = await session_cookie.get_logout_response()
    response.headers.append("set-cookie", logout.headers["set-cookie"])
    response.headers["Clear-Site-Data"] = '"cache", "storage"'
    return response


@router.post("/settings/email")
async def change_email(
    request: Request,
    user: PageUser,
    session: SessionDep,
    limiter: LimiterDep,
    settings: SettingsDep,
    email: Field = "",
    current_password: Field = "",
) -> Response:
    """Mail a code to the new address; the answer is the same whether or not it is taken."""
    email = clip(email.strip())
    problem = ("email", message) if (message := email_problem(email)) else None
    if problem is None:
        problem, jobs = await accounts.request_email_change(
            session=session,
            limiter=limiter,
            user=user,
            new_email=email,
            password=clip(current_password),
            secret=settings.secret_key,
            origin=origin(request),
        )
        mail_after(request, *jobs)
    if problem:
        return await _settings(
            request,
            user,
            session,
            email_errors=dict([problem]),
            values={"email": email},
            partial="settings/_email_form.html",
        )
    flash(request, f"If {email} can be used, a 6-digit code is on its way to it.", "info")
    return redirect(request, "/settings#email-h")


@router.post("/settings/email/confirm")
async def confirm_email(
    request: Request,
    user: PageUser,
    session: SessionDep,
    limiter: LimiterDep,
    settings: SettingsDep,
    code: Field = "",
) -> Response:
    code = clip(code.strip())
    if not (len(code) == 6 and code.isdigit()):
        error = "Enter the 6 digits from the email."
    else:
        result = await accounts.confirm_email_change(
            session=session,
            limiter=limiter,
            user=user,
            code=code,
            secret=settings.secret_key,
            origin=origin(request),
            keep=_token(request),
        )
        if result is accounts.EmailChangeResult.OK:
            flash(request, f"Your address is now {user.email}. Other devices are signed out.")
            return redirect(request, "/settings")
        error = CODE_ERRORS[result]
    return await _settings(
        request,
        user,
        session,
        confirm_errors={"code": error},
        partial="settings/_email_confirm_form.html",
    )


@router.post("/settings/sessions/revoke")
async def sign_out_others(request: Request, user: PageUser, session: SessionDep) -> Response:
    """Sign out every other device: the activity fragment to HTMX, a 303 to a plain form."""
    count = await audit.sign_out_others(
        session=session,
        user=user,
        keep=_token(request),
        lifetime=request.app.state.settings.session_lifetime_seconds,
        origin=origin(request),
    )
    notice = (
        f"Signed out {count} other session{'' if count == 1 else 's'}."
        if count
        else "No other session was signed in."
    )
    if is_htmx(request):
        return await _settings(
            request, user, session, notice=notice, partial="settings/_activity.html"
        )
    flash(request, notice)
    return redirect(request, "/settings#activity-h")
