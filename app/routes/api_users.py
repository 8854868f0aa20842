"""JSON API for the signed-in account: profile, password and email changes, activity, sessions."""

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import JSONResponse

from app.deps import CurrentUser, LimiterDep, SessionDep, SettingsDep, UserManagerDep, UserToken
from app.models.base import utcnow
from app.schemas import (
    Accepted,
    Activity,
    ActivityEvent,
    Code,
    DeleteAccount,
    Preferences,
    PreferencesUpdate,
    SessionsRevoked,
    UserRead,
    UserUpdate,
)
from app.services import accounts, audit, habits
from app.web import mail_after, origin

router = APIRouter(prefix="/users", tags=["users"])

EMAIL_CODE_SENT = (
    "If the new address can be used, a 6-digit code is on its way to it. "
    "Confirm it at /api/v1/users/me/email/confirm; your address changes then."
)


@router.get("/me")
async def me(user: CurrentUser) -> UserRead:
    """The signed-in account."""
    return UserRead.model_validate(user)


@router.patch(
    "/me",
    response_model=UserRead,
    responses={
        202: {"model": Accepted, "description": "A code went to the new address (if usable)"},
        422: {"description": "USER_UPDATE_INVALID: wrong current password, weak new one, etc."},
    },
)
async def update_me(
    request: Request,
    body: UserUpdate,
    user: CurrentUser,
    session: SessionDep,
    manager: UserManagerDep,
    limiter: LimiterDep,
    settings: SettingsDep,
) -> Response | UserRead:
    """Change the password (every session ends, this one included: sign in again; an `email`
    sent with it is ignored), or start changing the email: a code goes to the new address, a
    notice to the current one, and the address changes when the code is confirmed. The answer
    is the same for a taken address."""
    if body.password is not None:
        problem = await accounts.change_password(
            session=session,
            manager=manager,
            user=user,
            current=body.current_password,
            new=body.password,
            origin=origin(request),
        )
    else:
        problem, jobs = await accounts.request_email_change(
            session=session,
            limiter=limiter,
            user=user,
            new_email=str(body.email),
            password=body.current_password,
            secret=settings.secret_key,
            origin=origin(request),
        )
        mail_after(request, *jobs)
        if not problem:
            return JSONResponse(Accepted(message=EMAIL_CODE_SENT).model_dump(), status_code=202)
    if problem:
        field, reason = problem
        raise HTTPException(422, {"code": "USER_UPDATE_INVALID", "field": field, "reason": reason})
    return UserRead.model_validate(user)


@router.get("/me/preferences")
async def read_preferences(user: CurrentUser) -> Preferences:
    """Time zone, week start, theme, base currency, reminder and digest."""
    return Preferences.model_validate(user)


@router.patch("/me/preferences")
async def update_preferences(
    body: PreferencesUpdate, user: CurrentUser, session: SessionDep
) -> Preferences:
    """Change the preferences you send (`reminder_time: null` turns the reminder off);
    422 and nothing changed when one is not valid."""
    await accounts.update_preferences(
        session=session, user=user, changes=body.model_dump(exclude_unset=True)
    )
    return Preferences.model_validate(user)


DIGEST_QUEUED = "A digest of the period just ended is on its way to your address."


@router.post(
    "/me/digest/test",
    status_code=202,
    responses={429: {"description": "TOO_MANY_TEST_DIGESTS: 5 an hour at most"}},
)
async def test_digest(request: Request, user: CurrentUser, session: SessionDep) -> Accepted:
    """Queue a digest now (the period just ended, weekly when digests are off): it arrives
    within a minute while a worker runs."""
    try:
        job = await habits.queue_test_digest(session=session, user=user, now=utcnow())
    except habits.HabitsError as exc:
        raise HTTPException(429, {"code": "TOO_MANY_TEST_DIGESTS", "reason": str(exc)}) from exc
    await request.app.state.jobs.queue_scheduled(job)
    return Accepted(message=DIGEST_QUEUED)


@router.delete(
    "/me",
    status_code=204,
    response_class=Response,
    responses={422: {"description": "DELETE_ACCOUNT_INVALID: wrong password"}},
)
async def delete_me(
    request: Request, body: DeleteAccount, user: CurrentUser, session: SessionDep
) -> Response:
    """Delete your account and every entry, category, tag and session with it. No undo."""
    problem = await accounts.delete_account(
        session=session, user=user, password=body.password, media=request.app.state.media
    )
    if problem:
        raise HTTPException(422, {"code": "DELETE_ACCOUNT_INVALID", "reason": problem})
    return Response(status_code=204)


@router.post(
    "/me/email/confirm",
    responses={
        400: {"description": "EMAIL_CODE_INVALID, or EMAIL_TAKEN when the address was taken"},
        429: {"description": "TOO_MANY_ATTEMPTS"},
    },
)
async def confirm_email(
    request: Request,
    body: Code,
    user_token: UserToken,
    session: SessionDep,
    limiter: LimiterDep,
    settings: SettingsDep,
) -> UserRead:
    """Finish an email change with the code mailed to the new address (10 minutes, 5 tries).
    Every other session ends; this one stays signed in."""
    user, token = user_token
    result = await accounts.confirm_email_change(
        session=session,
        limiter=limiter,
        user=user,
        code=body.code,
        secret=settings.secret_key,
        origin=origin(request),
        keep=token,
    )
    if result is accounts.EmailChangeResult.RATE_LIMITED:
        raise HTTPException(429, result.value)
    if result is not accounts.EmailChangeResult.OK:
        raise HTTPException(400, result.value)
    return UserRead.model_validate(user)


@router.get("/me/activity")
async def activity(user_token: UserToken, session: SessionDep, settings: SettingsDep) -> Activity:
    """Your recent account events (sign-ins, failures, password and email changes, exports),
    newest first, and how many other sessions are signed in."""
    user, token = user_token
    events = await audit.recent(session=session, user=user)
    others = await audit.other_sessions(
        session=session, user=user, keep=token, lifetime=settings.session_lifetime_seconds
    )
    return Activity(other_sessions=others, items=[ActivityEvent.model_validate(e) for e in events])


@router.post("/me/sessions/revoke-others")
async def revoke_other_sessions(
    request: Request, user_token: UserToken, session: SessionDep, settings: SettingsDep
) -> SessionsRevoked:
    """Sign out every other browser and API token of your account; this one stays."""
    user, token = user_token
    count = await audit.sign_out_others(
        session=session,
        user=user,
        keep=token,
        lifetime=settings.session_lifetime_seconds,
        origin=origin(request),
    )
    return SessionsRevoked(revoked=count)
