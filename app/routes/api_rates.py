"""JSON API for your manual exchange rates: currencies the ECB does not publish.

Manual rates are per user (one user's guess never changes another's figures). A rate is
units of the currency per euro, like the ECB's, and holds on every day; it is used only
where the ECB has no rate for the currency on (or a few days before) a win's day.
"""

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Response, status

from app.deps import CurrentUser, SessionDep
from app.models import ManualRate
from app.schemas import ManualRateRead, ManualRateWrite, manual_currency
from app.services import money
from app.web import unprocessable

router = APIRouter(prefix="/rates", tags=["rates"])
Currency = Annotated[str, Path(max_length=3, description="ISO 4217 code, like XOF")]
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "RATE_NOT_FOUND: you have no manual rate for this currency"}
}


def _currency(value: str) -> str:
    try:
        return manual_currency(value)
    except ValueError as exc:
        raise unprocessable("path", "currency", str(exc)) from exc


def _read(rate: ManualRate) -> ManualRateRead:
    return ManualRateRead(currency=rate.currency, rate=rate.rate, updated_at=rate.updated_at)


@router.get("/manual")
async def list_manual_rates(user: CurrentUser, session: SessionDep) -> list[ManualRateRead]:
    """Your manual rates, by currency."""
    return [_read(r) for r in await money.manual_rates(session=session, user=user)]


@router.put("/manual/{currency}")
async def put_manual_rate(
    currency: Currency, body: ManualRateWrite, user: CurrentUser, session: SessionDep
) -> ManualRateRead:
    """Set (or change) your rate for a currency: how many of its units one euro buys."""
    code = _currency(currency)
    rate = await money.set_manual_rate(session=session, user=user, currency=code, rate=body.rate)
    return _read(rate)


@router.delete("/manual/{currency}", status_code=status.HTTP_204_NO_CONTENT, responses=NOT_FOUND)
async def delete_manual_rate(
    currency: Currency, user: CurrentUser, session: SessionDep
) -> Response:
    """Forget your rate for a currency: its wins are counted apart again."""
    code = _currency(currency)
    if not await money.delete_manual_rate(session=session, user=user, currency=code):
        raise HTTPException(404, "RATE_NOT_FOUND")
    return Response(status_code=status.HTTP_204_NO_CONTENT)
