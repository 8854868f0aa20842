"""Settings page: the account and a password change that signs out every other session."""

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from pydantic import ValidationError
from starlette.responses import Response

from app.auth import session_cookie, start_session
from app.deps import SessionDep, StrategyDep, UserManagerDep
from app.forms import clip, form_errors, validation_errors
from app.htmx import redirect, safe_next
from app.models import User
from app.schemas import CURRENCIES, TIMEZONES, PreferencesUpdate
from app.services import accounts
from app.templating import flash, render
from app.web import PageUser

router = APIRouter(include_in_schema=False)
TIMEZONE_CHOICES = sorted(TIMEZONES)
CURRENCY_CHOICES = sorted(CURRENCIES)
Field = Annotated[str, Form()]


def _settings(request: Request, user: User, **ctx: Any) -> Response:
    ctx = {
        "user": user,
        "errors": {},
        "values": {},
        "timezones": TIMEZONE_CHOICES,
        "currencies": CURRENCY_CHOICES,
        **ctx,
    }
    return render(
        request,
        "settings/page.html",
        ctx,
        partial=ctx.pop("partial", None),
        status_code=422
        if any(ctx.get(k) for k in ("errors", "pref_errors", "delete_errors"))
        else 200,
    )


@router.get("/settings")
async def settings_page(request: Request, user: PageUser) -> Response:
    return _settings(request, user)


@router.post("/settings/preferences")
async def save_preferences(request: Request, user: PageUser, session: SessionDep) -> Response:
    form = await request.form()
    fields = ("timezone", "week_start", "theme", "base_currency")
    values: dict[str, Any] = {name: str(form.get(name) or "")[:64] for name in fields}
    if values["week_start"].isdigit():
        values["week_start"] = int(values["week_start"])
    try:
        changes = PreferencesUpdate.model_validate({k: v or None for k, v in values.items()})
    except ValidationError as exc:
        return _settings(
            request,
            user,
            pref_errors=validation_errors(exc),
            partial="settings/_preferences_form.html",
        )
    await accounts.update_preferences(
        session=session, user=user, changes=changes.model_dump(exclude_unset=True)
    )
    flash(request, "Preferences saved.")
    return redirect(request, "/settings")


@router.post("/settings/theme")
async def save_theme(
    request: Request, user: PageUser, session: SessionDep, theme: Field = ""
) -> Response:
    """The footer's theme buttons: the choice follows the account to every device."""
    if theme in ("light", "dark", "system"):
        await accounts.update_preferences(session=session, user=user, changes={"theme": theme})
    return redirect(
        request,
        safe_next(
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
        )
        if problem:
            errors = dict([problem])
    if errors:
        return form_errors(
            request, "settings/page.html", "settings/_password_form.html", errors, {}, user=user
        )
    flash(request, "Password changed. Every other device has been signed out.")
    response = redirect(request, "/settings")
    await start_session(response, strategy, user)
    return response


@router.post("/settings/delete")
async def delete_account(
    request: Request, user: PageUser, session: SessionDep, password: Field = ""
) -> Response:
    problem = await accounts.delete_account(session=session, user=user, password=clip(password))
    if problem:
        return _settings(
            request, user, delete_errors={"password": problem}, partial="settings/_delete_form.html"
        )
    flash(request, "Your account and everything in it are deleted. Thank you for writing with us.")
    response = redirect(request, "/")
    logout = await session_cookie.get_logout_response()
    response.headers.append("set-cookie", logout.headers["set-cookie"])
    response.headers["Clear-Site-Data"] = '"cache", "storage"'
    return response
