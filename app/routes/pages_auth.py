"""Account pages: register, verify, sign in and out, forgot and reset password.

Each POST answers HTMX with the form fragment (errors inline) or HX-Redirect, and a
plain form with the page (422) or a 303 redirect, so all of it works without JavaScript.
"""

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi_users.exceptions import (
    InvalidPasswordException,
    InvalidResetPasswordToken,
    UserInactive,
)
from starlette.responses import Response

from app.auth import end_session, password_helper, password_problem, sign_in
from app.deps import LimiterDep, OptionalUser, SessionDep, SettingsDep, StrategyDep, UserManagerDep
from app.forms import TIMEZONE_GROUPS, clip, email_problem, form_errors, timezone_problem
from app.htmx import local_path, redirect
from app.services import accounts, twofactor
from app.templating import flash, render
from app.web import after_response, audit_after, audit_login, client_ip, start_second_step

router = APIRouter(include_in_schema=False)

Field = Annotated[str, Form()]
STATUS_POLLS = 20
LOGIN_ERROR = "The email or password is not correct."
BAD_CODE = "That code is not right or has expired. Check the latest email, or send a new code."
TOO_MANY = "Too many attempts. Wait a while, or reset your password by email."


def _verify_url(email: str) -> str:
    return f"/verify?email={quote(email)}"


@router.get("/register")
async def register_page(request: Request, user: OptionalUser) -> Response:
    if user:
        return redirect(request, "/")
    return render(request, "auth/register.html", {"values": {}, "errors": {}})


@router.post("/register")
async def register(
    request: Request,
    settings: SettingsDep,
    email: Field = "",
    password: Field = "",
    timezone: Field = "",
) -> Response:
    """`timezone` is the browser's (static/js/timezone.js fills it); without it, UTC."""
    email, password, timezone = clip(email.strip()), clip(password), clip(timezone.strip())
    errors = {
        "email": email_problem(email),
        "password": password_problem(password, email),
        "timezone": timezone_problem(timezone),
    }
    if any(errors.values()):
        return form_errors(
            request,
            "auth/register.html",
            "auth/_register_form.html",
            {k: v for k, v in errors.items() if v},
            {"email": email, "timezone": timezone},
            timezone_groups=TIMEZONE_GROUPS,
        )
    password_hash = await run_in_threadpool(password_helper.hash, password)
    after_response(
        request,
        lambda s: accounts.register(
            session=s,
            email=email,
            password=password,
            password_hash=password_hash,
            secret=settings.secret_key,
            timezone=timezone or None,
        ),
    )
    flash(request, f"We sent a 6-digit code to {email}. Enter it below to finish.", "info")
    return redirect(request, _verify_url(email))


@router.get("/verify")
async def verify_page(request: Request, email: str = "") -> Response:
    values = {"email": clip(email)}
    return render(request, "auth/verify.html", {"values": values, "errors": {}, "poll": 1})


@router.get("/verify/status")
async def verify_status(
    request: Request, session: SessionDep, email: str = "", n: int = 1
) -> Response:
    """Polled by the verify page: says so when the code could not be mailed."""
    failed = bool(email) and await accounts.code_mail_failed(session=session, email=clip(email))
    more = not failed and n < STATUS_POLLS
    ctx = {
        "values": {"email": email},
        "mail_failed": failed,
        "poll": n + 1 if more else None,
        "outbox": request.app.state.settings.dev,  # development keeps every mail at /dev/mail
    }
    return render(request, "auth/_verify_status.html", ctx)


@router.post("/verify")
async def verify(
    request: Request,
    session: SessionDep,
    limiter: LimiterDep,
    settings: SettingsDep,
    email: Field = "",
    code: Field = "",
) -> Response:
    email, code = clip(email.strip()), clip(code.strip())
    values = {"email": email}
    errors: dict[str, str] = {}
    if problem := email_problem(email):
        errors["email"] = problem
    if not (len(code) == 6 and code.isdigit()):
        errors["code"] = "Enter the 6 digits from the email."
    if not errors:
        result = await accounts.verify_code(
            session=session,
            limiter=limiter,
            email=email,
            code=code,
            ip=client_ip(request),
            secret=settings.secret_key,
        )
        if result is accounts.VerifyResult.OK:
            flash(request, "Your address is verified. Sign in to start your diary.")
            return redirect(request, f"/login?email={quote(email)}")
        errors["code"] = TOO_MANY if result is accounts.VerifyResult.RATE_LIMITED else BAD_CODE
    return form_errors(request, "auth/verify.html", "auth/_verify_form.html", errors, values)


@router.post("/verify/resend")
async def resend_code(request: Request, settings: SettingsDep, email: Field = "") -> Response:
    email = clip(email.strip())
    if problem := email_problem(email):
        flash(request, problem, "error")
        return redirect(request, "/verify")
    after_response(
        request, lambda s: accounts.request_code(session=s, email=email, secret=settings.secret_key)
    )
    flash(
        request,
        f"A new code is on its way to {email}, unless we sent one less than a minute ago. "
        "Only the newest code works.",
        "info",
    )
    return redirect(request, _verify_url(email))


@router.get("/login")
async def login_page(
    request: Request, user: OptionalUser, email: str = "", next: str = "/", signed_out: bool = False
) -> Response:
    if user:
        return redirect(request, local_path(next))
    if signed_out:  # said here: the sign-out answer cleared every cookie, the flash's too
        flash(request, "You have signed out.")
    values = {"email": clip(email), "next": local_path(next)}
    return render(request, "auth/login.html", {"values": values, "errors": {}})


@router.post("/login")
async def login(
    request: Request,
    manager: UserManagerDep,
    limiter: LimiterDep,
    strategy: StrategyDep,
    settings: SettingsDep,
    session: SessionDep,
    email: Field = "",
    password: Field = "",
    next: Field = "/",
) -> Response:
    email, values = clip(email.strip()), {"email": clip(email.strip()), "next": local_path(next)}
    result, user = await accounts.login(
        manager=manager,
        limiter=limiter,
        email=email,
        password=clip(password),
        ip=client_ip(request),
    )
    ok = result is accounts.LoginResult.OK and user is not None
    if ok and user is not None and await twofactor.totp_enabled(session, user.id):
        return await start_second_step(request, session, user, values["next"])  # no session yet
    audit_login(request, result, user, email)
    if result is accounts.LoginResult.NOT_VERIFIED:
        after_response(
            request,
            lambda s: accounts.request_code(session=s, email=email, secret=settings.secret_key),
        )
        flash(
            request,
            "Please verify your email address first, with the newest code we sent you.",
            "info",
        )
        return redirect(request, _verify_url(email))
    if result is not accounts.LoginResult.OK or user is None:
        status = 429 if result is accounts.LoginResult.RATE_LIMITED else 422
        message = TOO_MANY if status == 429 else LOGIN_ERROR
        page = form_errors(
            request, "auth/login.html", "auth/_login_form.html", {"form": message}, values
        )
        page.status_code = status
        return page
    response = redirect(request, values["next"])
    await sign_in(request, response, strategy, user)
    return response


@router.post("/logout")
async def logout(request: Request, user: OptionalUser, strategy: StrategyDep) -> Response:
    """Ends the session for good; an already expired session just gets its cookie cleared."""
    response = redirect(request, "/login?signed_out=1")  # Clear-Site-Data: see app.security
    await end_session(request, response, strategy, user)
    if user is not None:
        audit_after(request, "logout", user)
    return response


@router.get("/forgot-password")
async def forgot_page(request: Request, email: str = "") -> Response:
    return render(request, "auth/forgot.html", {"values": {"email": clip(email)}, "errors": {}})


@router.post("/forgot-password")
async def forgot(request: Request, settings: SettingsDep, email: Field = "") -> Response:
    email = clip(email.strip())
    if problem := email_problem(email):
        return form_errors(
            request,
            "auth/forgot.html",
            "auth/_forgot_form.html",
            {"email": problem},
            {"email": email},
        )
    after_response(
        request, lambda s: accounts.forgot_password(session=s, settings=settings, email=email)
    )
    flash(
        request,
        f"If an account uses {email}, a reset link is on its way. It works for one hour.",
        "info",
    )
    return redirect(request, "/login")


@router.get("/reset-password")
async def reset_page(request: Request, token: str = "") -> Response:
    return render(request, "auth/reset.html", {"values": {"token": clip(token)}, "errors": {}})


@router.post("/reset-password")
async def reset(
    request: Request,
    manager: UserManagerDep,
    limiter: LimiterDep,
    token: Field = "",
    password: Field = "",
) -> Response:
    values = {"token": clip(token)}
    try:
        user = await accounts.reset_password(
            manager=manager, token=clip(token), password=clip(password)
        )
    except (InvalidResetPasswordToken, UserInactive):
        errors = {"form": "This reset link is invalid, used or expired. Ask for a new one below."}
    except InvalidPasswordException as exc:
        errors = {"password": str(exc.reason)}
    else:
        await limiter.forget_login_failures(user.email)
        audit_after(request, "password_reset", user)
        flash(
            request, "Your password has been changed and every session signed out. Sign in again."
        )
        return redirect(request, f"/login?email={quote(user.email)}")
    return form_errors(request, "auth/reset.html", "auth/_reset_form.html", errors, values)
