"""Pages for two-step sign-in: the second step after the password, passkey sign-in from /login,
and the settings for an authenticator app, recovery codes and passkeys.

The WebAuthn ceremonies are JSON posts from static/js/passkeys.js (with the CSRF header); the
rest are plain forms that work without JavaScript.
"""

import json
from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Request
from starlette.responses import JSONResponse, Response

from app.auth import session_cookie, sign_in
from app.deps import LimiterDep, PageUser, SessionDep, SettingsDep, StrategyDep
from app.forms import clip
from app.htmx import local_path, redirect
from app.security import LOOPBACK_HOSTS
from app.services import passkeys, twofactor
from app.templating import flash, render
from app.web import audit_after, mail_after, origin, pending_cookie

router = APIRouter(include_in_schema=False)
Field = Annotated[str, Form()]
TIMED_OUT = "Your sign-in timed out. Enter your email and password again."
WRONG = "That code is not right. Enter the newest 6 digits from your app, or a recovery code."
TOO_MANY = "Too many wrong codes. Wait a while, then sign in again."


def relying_party(request: Request) -> passkeys.RelyingParty:
    """The RP ID and origin from BASE_URL; in development without one, the loopback name and
    port this request came to (as app.security.SameOrigin allows)."""
    settings = request.app.state.settings
    host = request.url.hostname or ""
    if settings.loopback_origins and (host in LOOPBACK_HOSTS or f"[{host}]" in LOOPBACK_HOSTS):
        netloc = request.headers.get("host", host)
        return passkeys.RelyingParty(rp_id=host, origins=[f"http://{netloc}"])
    return passkeys.RelyingParty(rp_id=settings.origin_host, origins=[settings.origin])


def _token(request: Request) -> str:
    return request.cookies.get(session_cookie.cookie_name, "")


# --- the second step -------------------------------------------------------------------------


def _forget_pending(request: Request, response: Response) -> None:
    settings = request.app.state.settings
    response.delete_cookie(
        pending_cookie(request),
        path="/",
        secure=settings.secure_cookies,
        httponly=True,
        samesite="lax",
    )


@router.get("/login/second-step")
async def second_step_page(request: Request, session: SessionDep) -> Response:
    token = request.cookies.get(pending_cookie(request))
    if await twofactor.find_pending(session=session, token=token) is None:
        flash(request, TIMED_OUT, "info")
        return redirect(request, "/login")
    return render(request, "twofactor/second_step.html", {"values": {}, "errors": {}})


@router.post("/login/second-step")
async def second_step(
    request: Request,
    session: SessionDep,
    limiter: LimiterDep,
    strategy: StrategyDep,
    settings: SettingsDep,
    code: Field = "",
) -> Response:
    found = await twofactor.find_pending(
        session=session, token=request.cookies.get(pending_cookie(request))
    )
    if found is None:
        flash(request, TIMED_OUT, "info")
        response = redirect(request, "/login")
        _forget_pending(request, response)
        return response
    pending, user = found
    result = await twofactor.check_code(
        session=session,
        limiter=limiter,
        user=user,
        code=clip(code),
        ip=origin(request).ip,
        secret_key=settings.secret_key,
        pending=pending,
    )
    if not result.ok:
        status = 429 if result is twofactor.CodeResult.RATE_LIMITED else 422
        if status == 422:
            audit_after(request, "login_failed", user, "wrong authenticator code")
        page = render(
            request,
            "twofactor/second_step.html",
            {"values": {}, "errors": {"code": TOO_MANY if status == 429 else WRONG}},
            status_code=status,
        )
        return page
    next_path = local_path(pending.next_path)
    await twofactor.end_pending(session=session, pending=pending)
    how = "with an authenticator code"
    if result is twofactor.CodeResult.RECOVERY:
        left, jobs = await twofactor.note_recovery_used(
            session=session, user=user, origin=origin(request)
        )
        mail_after(request, *jobs)
        how = "with a recovery code"
        flash(
            request,
            f"You signed in with a recovery code. {left} recovery code{'' if left == 1 else 's'} "
            "remain; each works once. Settings can make new ones.",
            "info",
        )
    audit_after(request, "login", user, how)
    response = redirect(request, next_path)
    _forget_pending(request, response)
    await sign_in(request, response, strategy, user)
    return response


# --- passkey sign-in (no password) -----------------------------------------------------------


async def _json(request: Request) -> dict[str, Any]:
    try:
        body = json.loads((await request.body())[: passkeys.CREDENTIAL_JSON_MAX * 2])
    except (ValueError, UnicodeDecodeError):
        return {}
    return body if isinstance(body, dict) else {}


@router.post("/login/passkey/options")
async def passkey_login_options(request: Request, session: SessionDep) -> Response:
    handle, options = await passkeys.login_options(session=session, rp=relying_party(request))
    return JSONResponse({"handle": handle, "publicKey": options})


@router.post("/login/passkey")
async def passkey_login(request: Request, session: SessionDep, strategy: StrategyDep) -> Response:
    body = await _json(request)
    credential = body.get("credential")
    user = None
    if isinstance(credential, dict) and isinstance(body.get("handle"), str):
        user = await passkeys.passkey_login(
            session=session, handle=body["handle"], credential=credential, rp=relying_party(request)
        )
    if user is None:
        message = "That passkey did not sign you in. Try again, or use your password."
        return JSONResponse({"detail": "PASSKEY_INVALID", "message": message}, status_code=400)
    target = local_path(str(body.get("next") or "/"))
    audit_after(request, "login", user, "with a passkey")
    response = JSONResponse({"redirect": target})
    await sign_in(request, response, strategy, user)
    return response


# --- settings: authenticator app -------------------------------------------------------------


def _problem_page(request: Request, problem: twofactor.TwoFactorProblem) -> Response:
    flash(request, problem.message, "error")
    return redirect(request, "/settings#twofactor-h")


@router.post("/settings/totp/setup")
async def totp_setup(
    request: Request,
    user: PageUser,
    session: SessionDep,
    settings: SettingsDep,
    current_password: Field = "",
) -> Response:
    try:
        found = await twofactor.setup_totp(
            session=session,
            user=user,
            password=clip(current_password),
            secret_key=settings.secret_key,
        )
    except twofactor.TwoFactorProblem as problem:
        return _problem_page(request, problem)
    return render(request, "twofactor/setup.html", {"user": user, "setup": found, "errors": {}})


@router.post("/settings/totp/enable")
async def totp_enable(
    request: Request,
    user: PageUser,
    session: SessionDep,
    settings: SettingsDep,
    code: Field = "",
) -> Response:
    try:
        codes, jobs = await twofactor.enable_totp(
            session=session,
            user=user,
            code=clip(code),
            secret_key=settings.secret_key,
            origin=origin(request),
            keep=_token(request),
        )
    except twofactor.TwoFactorProblem as problem:
        found = await twofactor.pending_setup(
            session=session, user=user, secret_key=settings.secret_key
        )
        if found is None:
            return _problem_page(request, problem)
        ctx = {"user": user, "setup": found, "errors": {"code": problem.message}}
        return render(request, "twofactor/setup.html", ctx, status_code=422)
    mail_after(request, *jobs)
    return render(request, "twofactor/recovery_codes.html", {"user": user, "codes": codes})


@router.post("/settings/totp/recovery-codes")
async def renew_recovery_codes(
    request: Request,
    user: PageUser,
    session: SessionDep,
    settings: SettingsDep,
    current_password: Field = "",
) -> Response:
    try:
        codes, jobs = await twofactor.renew_recovery_codes(
            session=session,
            user=user,
            password=clip(current_password),
            secret_key=settings.secret_key,
            origin=origin(request),
        )
    except twofactor.TwoFactorProblem as problem:
        return _problem_page(request, problem)
    mail_after(request, *jobs)
    ctx = {"user": user, "codes": codes, "renewed": True}
    return render(request, "twofactor/recovery_codes.html", ctx)


@router.post("/settings/totp/disable")
async def totp_disable(
    request: Request,
    user: PageUser,
    session: SessionDep,
    limiter: LimiterDep,
    settings: SettingsDep,
    current_password: Field = "",
    code: Field = "",
) -> Response:
    try:
        jobs = await twofactor.disable_totp(
            session=session,
            limiter=limiter,
            user=user,
            password=clip(current_password),
            code=clip(code),
            secret_key=settings.secret_key,
            origin=origin(request),
        )
    except twofactor.TwoFactorProblem as problem:
        return _problem_page(request, problem)
    mail_after(request, *jobs)
    flash(request, "Two-step sign-in with an app is off. Your recovery codes no longer work.")
    return redirect(request, "/settings#twofactor-h")


@router.post("/settings/twofactor/dismiss")
async def dismiss_nudge(request: Request, user: PageUser, session: SessionDep) -> Response:
    await twofactor.dismiss_nudge(session=session, user=user)
    return redirect(request, "/settings")


# --- settings: passkeys ----------------------------------------------------------------------


@router.post("/settings/passkeys/options")
async def passkey_options(request: Request, user: PageUser, session: SessionDep) -> Response:
    handle, options = await passkeys.registration_options(
        session=session, user=user, rp=relying_party(request)
    )
    return JSONResponse({"handle": handle, "publicKey": options})


@router.post("/settings/passkeys")
async def passkey_add(request: Request, user: PageUser, session: SessionDep) -> Response:
    body = await _json(request)
    credential, handle = body.get("credential"), body.get("handle")
    if not isinstance(credential, dict) or not isinstance(handle, str):
        problem = passkeys.BAD_PASSKEY
    else:
        try:
            key, jobs = await passkeys.add_passkey(
                session=session,
                user=user,
                handle=handle,
                credential=credential,
                name=str(body.get("name") or "")[:200],
                rp=relying_party(request),
                origin=origin(request),
                keep=_token(request),
            )
        except twofactor.TwoFactorProblem as exc:
            problem = exc
        else:
            mail_after(request, *jobs)
            flash(request, f"Passkey “{key.name}” added. Every other device has been signed out.")
            return JSONResponse({"redirect": "/settings#passkeys-h"})
    return JSONResponse({"detail": problem.code, "message": problem.message}, status_code=400)


@router.post("/settings/passkeys/{passkey_id}/delete")
async def passkey_remove(
    request: Request, user: PageUser, session: SessionDep, passkey_id: int
) -> Response:
    if not 0 < passkey_id < 2**31:
        raise HTTPException(404)
    jobs = await passkeys.remove_passkey(
        session=session, user=user, passkey_id=passkey_id, origin=origin(request)
    )
    if jobs is None:
        raise HTTPException(404)
    mail_after(request, *jobs)
    flash(request, "Passkey removed.")
    return redirect(request, "/settings#passkeys-h")
