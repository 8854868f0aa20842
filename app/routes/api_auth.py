"""JSON API for accounts: register, verify, login/logout (cookie and bearer), password reset.

Answers that could reveal whether an email is registered are the same for every email;
the work that differs (creating the account, mailing) runs after the answer went out.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from fastapi.security import OAuth2PasswordRequestForm
from fastapi_users.exceptions import (
    InvalidPasswordException,
    InvalidResetPasswordToken,
    UserInactive,
)

from app.auth import (
    User,
    password_helper,
    password_problem,
    session_cookie,
    sign_in,
)
from app.db import get_session
from app.deps import LimiterDep, SessionDep, SettingsDep, StrategyDep, UserManagerDep, UserToken
from app.forms import clip
from app.schemas import Accepted, Email, Register, ResetPassword, Token, Verify
from app.services import accounts, twofactor
from app.web import after_response, audit_after, audit_login, client_ip, mail_after, origin


class OtpLoginForm(OAuth2PasswordRequestForm):
    """OAuth2's password form, plus `otp`: the authenticator or recovery code of an account with
    two-step sign-in on."""

    def __init__(
        self,
        *,
        grant_type: Annotated[str | None, Form(pattern="^password$")] = None,
        username: Annotated[str, Form()],
        password: Annotated[str, Form(json_schema_extra={"format": "password"})],
        scope: Annotated[str, Form()] = "",
        client_id: Annotated[str | None, Form()] = None,
        client_secret: Annotated[str | None, Form(json_schema_extra={"format": "password"})] = None,
        otp: Annotated[str | None, Form(max_length=64)] = None,
    ) -> None:
        super().__init__(
            grant_type=grant_type,
            username=username,
            password=password,
            scope=scope,
            client_id=client_id,
            client_secret=client_secret,
        )
        self.otp = otp


async def login_second_step(request: Request, user: User, otp: str | None) -> str:
    """After a right password: '' for an account without a second step, else how the code
    proved it; 401 OTP_REQUIRED without one, the generic 400 for a wrong one, 429 past limits."""
    session = await get_session(request)
    if not await twofactor.totp_enabled(session, user.id):
        return ""
    if not otp:
        raise HTTPException(401, "OTP_REQUIRED")
    settings = request.app.state.settings
    result = await twofactor.check_code(
        session=session,
        limiter=request.app.state.limiter,
        user=user,
        code=otp,
        ip=origin(request).ip,
        secret_key=settings.secret_key,
    )
    if result is twofactor.CodeResult.RATE_LIMITED:
        raise HTTPException(429, "TOO_MANY_ATTEMPTS")
    if not result.ok:
        audit_after(request, "login_failed", user, "wrong authenticator code")
        raise HTTPException(400, "LOGIN_BAD_CREDENTIALS")
    if result is twofactor.CodeResult.RECOVERY:
        _, jobs = await twofactor.note_recovery_used(
            session=session, user=user, origin=origin(request)
        )
        mail_after(request, *jobs)
        return "with a recovery code"
    return "with an authenticator code"


router = APIRouter(prefix="/auth", tags=["auth"])

LoginForm = Annotated[OtpLoginForm, Depends()]  # OAuth2's form plus `otp`

CODE_SENT = "If this address can sign up, a 6-digit code is on its way to it."
RESET_SENT = "If an account uses this address, a link to reset the password is on its way."


def _errors(*pairs: tuple[int, str]) -> dict[int | str, dict[str, Any]]:
    return {
        code: {"description": text, "content": {"application/json": {"example": {"detail": text}}}}
        for code, text in pairs
    }


def invalid_password(code: str, reason: str) -> HTTPException:
    return HTTPException(422, {"code": code, "reason": reason})


@router.post(
    "/register",
    status_code=status.HTTP_202_ACCEPTED,
    responses=_errors((422, "REGISTER_INVALID_PASSWORD")),
)
async def register(body: Register, request: Request, settings: SettingsDep) -> Accepted:
    """Start a registration. The answer is the same whether or not the email is taken;
    a 6-digit code (or, for a taken address, a notice) is mailed to the address."""
    problem = password_problem(body.password, body.email)
    if problem:
        raise invalid_password("REGISTER_INVALID_PASSWORD", problem)
    password_hash = await run_in_threadpool(password_helper.hash, body.password)
    after_response(
        request,
        lambda s: accounts.register(
            session=s,
            email=body.email,
            password=body.password,
            password_hash=password_hash,
            secret=settings.secret_key,
        ),
    )
    return Accepted(message=CODE_SENT)


@router.post("/request-code", status_code=status.HTTP_202_ACCEPTED)
async def request_code(body: Email, request: Request, settings: SettingsDep) -> Accepted:
    """Mail a new code to an unverified account (the old code stops working). At most one
    a minute and 5 account mails an hour per address: a request past either changes nothing."""
    after_response(
        request,
        lambda s: accounts.request_code(session=s, email=body.email, secret=settings.secret_key),
    )
    return Accepted(message=CODE_SENT)


@router.post(
    "/verify",
    responses=_errors((400, "VERIFY_CODE_INVALID"), (429, "TOO_MANY_ATTEMPTS")),
)
async def verify(
    body: Verify, request: Request, session: SessionDep, limiter: LimiterDep, settings: SettingsDep
) -> Accepted:
    """Prove the address with the mailed code: 10 minutes, single use, 5 tries."""
    result = await accounts.verify_code(
        session=session,
        limiter=limiter,
        email=body.email,
        code=body.code,
        ip=client_ip(request),
        secret=settings.secret_key,
    )
    if result is accounts.VerifyResult.RATE_LIMITED:
        raise HTTPException(429, result.value)
    if result is not accounts.VerifyResult.OK:
        raise HTTPException(400, result.value)
    return Accepted(status="verified", message="Your address is verified. You can sign in.")


async def _login(request: Request, form: OtpLoginForm, manager: Any, limiter: Any) -> User:
    email = clip(form.username)
    result, user = await accounts.login(
        manager=manager, limiter=limiter, email=email, password=form.password, ip=client_ip(request)
    )
    method = ""
    if result is accounts.LoginResult.OK and user is not None:
        method = await login_second_step(request, user, form.otp)  # 401, 400 or 429 when due
    audit_login(request, result, user, email, method)
    if result is accounts.LoginResult.RATE_LIMITED:
        raise HTTPException(429, result.value)
    if result is not accounts.LoginResult.OK or user is None:
        raise HTTPException(400, result.value)
    return user


LOGIN_ERRORS = _errors(
    (400, "LOGIN_BAD_CREDENTIALS or LOGIN_USER_NOT_VERIFIED"),
    (401, "OTP_REQUIRED: two-step sign-in is on; send the code as `otp`"),
    (429, "TOO_MANY_ATTEMPTS"),
)


@router.post("/cookie/login", status_code=204, response_class=Response, responses=LOGIN_ERRORS)
async def cookie_login(
    request: Request,
    form: LoginForm,
    manager: UserManagerDep,
    limiter: LimiterDep,
    strategy: StrategyDep,
) -> Response:
    """Sign in a browser: the session is an HttpOnly cookie (and the CSRF token is new)."""
    user = await _login(request, form, manager, limiter)
    response = Response(status_code=204)
    await sign_in(request, response, strategy, user)
    return response


@router.post("/bearer/login", responses=LOGIN_ERRORS)
async def bearer_login(
    request: Request,
    form: LoginForm,
    manager: UserManagerDep,
    limiter: LimiterDep,
    strategy: StrategyDep,
) -> Token:
    """Sign in an API client: send the token as `Authorization: Bearer <token>`."""
    user = await _login(request, form, manager, limiter)
    return Token(access_token=await strategy.write_token(user))


@router.post("/cookie/logout", status_code=204, response_class=Response)
async def cookie_logout(request: Request, user_token: UserToken, strategy: StrategyDep) -> Response:
    """End this browser session for good (the token is deleted, not just forgotten)."""
    user, token = user_token
    await strategy.destroy_token(token, user)
    audit_after(request, "logout", user)
    return await session_cookie.get_logout_response()


@router.post("/bearer/logout", status_code=204, response_class=Response)
async def bearer_logout(request: Request, user_token: UserToken, strategy: StrategyDep) -> Response:
    """Revoke this bearer token."""
    user, token = user_token
    await strategy.destroy_token(token, user)
    audit_after(request, "logout", user)
    return Response(status_code=204)


@router.post("/forgot-password", status_code=status.HTTP_202_ACCEPTED)
async def forgot_password(body: Email, request: Request, settings: SettingsDep) -> Accepted:
    """Mail a single-use reset link valid for one hour to the account, if there is one."""
    after_response(
        request,
        lambda s: accounts.forgot_password(session=s, settings=settings, email=body.email),
    )
    return Accepted(message=RESET_SENT)


@router.post(
    "/reset-password",
    responses=_errors((400, "RESET_PASSWORD_BAD_TOKEN"), (422, "RESET_PASSWORD_INVALID_PASSWORD")),
)
async def reset_password(
    request: Request, body: ResetPassword, manager: UserManagerDep, limiter: LimiterDep
) -> Accepted:
    """Set a new password with the emailed token; every session of the account ends."""
    try:
        user = await accounts.reset_password(
            manager=manager, token=body.token, password=body.password
        )
    except (InvalidResetPasswordToken, UserInactive) as exc:
        raise HTTPException(400, "RESET_PASSWORD_BAD_TOKEN") from exc
    except InvalidPasswordException as exc:
        raise invalid_password("RESET_PASSWORD_INVALID_PASSWORD", str(exc.reason)) from exc
    await limiter.forget_login_failures(user.email)
    audit_after(request, "password_reset", user)
    return Accepted(status="reset", message="Your password has been changed. You can sign in.")
