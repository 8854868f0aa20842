"""JSON API for the signed-in account."""

from fastapi import APIRouter, HTTPException, Response

from app.deps import CurrentUser, SessionDep, UserManagerDep
from app.schemas import DeleteAccount, Preferences, PreferencesUpdate, UserRead, UserUpdate
from app.services import accounts

router = APIRouter(prefix="/users", tags=["users"])


@router.get("/me")
async def me(user: CurrentUser) -> UserRead:
    """The signed-in account."""
    return UserRead.model_validate(user)


@router.patch(
    "/me",
    responses={422: {"description": "USER_UPDATE_INVALID: wrong current password or weak new one"}},
)
async def update_me(
    body: UserUpdate, user: CurrentUser, session: SessionDep, manager: UserManagerDep
) -> UserRead:
    """Change the password. Every session ends, this one included: sign in again."""
    problem = await accounts.change_password(
        session=session,
        manager=manager,
        user=user,
        current=body.current_password,
        new=body.password,
    )
    if problem:
        field, reason = problem
        raise HTTPException(422, {"code": "USER_UPDATE_INVALID", "field": field, "reason": reason})
    return UserRead.model_validate(user)


@router.get("/me/preferences")
async def read_preferences(user: CurrentUser) -> Preferences:
    """Time zone, week start, theme and base currency."""
    return Preferences.model_validate(user)


@router.patch("/me/preferences")
async def update_preferences(
    body: PreferencesUpdate, user: CurrentUser, session: SessionDep
) -> Preferences:
    """Change the preferences you send."""
    await accounts.update_preferences(
        session=session, user=user, changes=body.model_dump(exclude_unset=True)
    )
    return Preferences.model_validate(user)


@router.delete(
    "/me",
    status_code=204,
    response_class=Response,
    responses={422: {"description": "DELETE_ACCOUNT_INVALID: wrong password"}},
)
async def delete_me(body: DeleteAccount, user: CurrentUser, session: SessionDep) -> Response:
    """Delete your account and every entry, category, tag and session with it. No undo."""
    problem = await accounts.delete_account(session=session, user=user, password=body.password)
    if problem:
        raise HTTPException(422, {"code": "DELETE_ACCOUNT_INVALID", "reason": problem})
    return Response(status_code=204)
