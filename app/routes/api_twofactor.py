"""JSON API for two-step sign-in: set up, enable and disable an authenticator app (TOTP), and the
`otp` check the API's password logins make (app/routes/api_auth.py)."""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, Field

from app.auth import User, current_user_token
from app.deps import LimiterDep, SessionDep, SettingsDep
from app.services import twofactor
from app.web import mail_after, origin

router = APIRouter(prefix="/users/me/totp", tags=["users"])
UserToken = Annotated[tuple[User, str], Depends(current_user_token)]


class TotpSetupBody(BaseModel):
    current_password: str = Field(max_length=1024)


class TotpSetupRead(BaseModel):
    secret: str = Field(description="Base32, for typing into an authenticator app")
    otpauth_uri: str = Field(description="otpauth://totp/... (what the settings page's QR holds)")


class TotpEnableBody(BaseModel):
    code: str = Field(max_length=64, description="The 6 digits the app shows now")


class RecoveryCodesRead(BaseModel):
    recovery_codes: list[str] = Field(description="Ten single-use codes, shown this once")


class TotpDisableBody(BaseModel):
    current_password: str = Field(max_length=1024)
    code: str = Field(max_length=64, description="A code from the app, or a recovery code")


class Disabled(BaseModel):
    status: str = "disabled"


def _doc(*pairs: tuple[int, str]) -> dict[int | str, dict[str, Any]]:
    return {
        code: {"description": text, "content": {"application/json": {"example": {"detail": text}}}}
        for code, text in pairs
    }


def _refuse(problem: twofactor.TwoFactorProblem) -> HTTPException:
    status = {"TOO_MANY_ATTEMPTS": 429, "INVALID_PASSWORD": 400, "INVALID_CODE": 400}
    return HTTPException(status.get(problem.code, 409), problem.code)


@router.post(
    "/setup",
    responses=_doc((400, "INVALID_PASSWORD"), (409, "TOTP_ALREADY_ENABLED")),
)
async def setup(
    body: TotpSetupBody, user_token: UserToken, session: SessionDep, settings: SettingsDep
) -> TotpSetupRead:
    """Start setting up an authenticator app: a new secret, not in force until `enable`."""
    try:
        found = await twofactor.setup_totp(
            session=session,
            user=user_token[0],
            password=body.current_password,
            secret_key=settings.secret_key,
        )
    except twofactor.TwoFactorProblem as problem:
        raise _refuse(problem) from None
    return TotpSetupRead(secret=found.secret, otpauth_uri=found.otpauth_uri)


@router.post(
    "/enable",
    responses=_doc((400, "INVALID_CODE"), (409, "TOTP_NOT_SET_UP or TOTP_ALREADY_ENABLED")),
)
async def enable(
    body: TotpEnableBody,
    request: Request,
    user_token: UserToken,
    session: SessionDep,
    settings: SettingsDep,
) -> RecoveryCodesRead:
    """Turn the second step on with the app's current code; every other session ends."""
    user, token = user_token
    try:
        codes, jobs = await twofactor.enable_totp(
            session=session,
            user=user,
            code=body.code,
            secret_key=settings.secret_key,
            origin=origin(request),
            keep=token,
        )
    except twofactor.TwoFactorProblem as problem:
        raise _refuse(problem) from None
    mail_after(request, *jobs)
    return RecoveryCodesRead(recovery_codes=codes)


@router.post(
    "/disable",
    responses=_doc(
        (400, "INVALID_PASSWORD or INVALID_CODE"),
        (409, "TOTP_NOT_ENABLED"),
        (429, "TOO_MANY_ATTEMPTS"),
    ),
)
async def disable(
    body: TotpDisableBody,
    request: Request,
    user_token: UserToken,
    session: SessionDep,
    limiter: LimiterDep,
    settings: SettingsDep,
) -> Disabled:
    """Turn the second step off with the password and a code (or a recovery code)."""
    try:
        jobs = await twofactor.disable_totp(
            session=session,
            limiter=limiter,
            user=user_token[0],
            password=body.current_password,
            code=body.code,
            secret_key=settings.secret_key,
            origin=origin(request),
        )
    except twofactor.TwoFactorProblem as problem:
        raise _refuse(problem) from None
    mail_after(request, *jobs)
    return Disabled()
