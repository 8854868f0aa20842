"""JSON stats for the dashboard and for API clients, in your time zone and week start."""

from datetime import date, timedelta
from functools import lru_cache
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import TypeAdapter
from starlette.responses import Response

from app.deps import CurrentUser, SessionDep
from app.schemas import DAY_MIN, EntryRead, MoneyStats, Year
from app.schemas import Day as InRange
from app.services import money, stats
from app.services.entries import today_for
from app.services.stats import CategoryCount, HeatDay, MoodPoint, Period, Point, Streaks, Summary
from app.web import unprocessable

router = APIRouter(prefix="/stats", tags=["stats"])
DEFAULT_SPAN = {
    "day": timedelta(days=29),
    "week": timedelta(weeks=11),
    "month": timedelta(days=334),
}
MAX_SPAN = timedelta(days=3700)
Day = Annotated[InRange | None, Query(description="YYYY-MM-DD, 1900-01-01 to 2999-12-31")]


@lru_cache
def _adapter(model: Any) -> TypeAdapter[Any]:
    return TypeAdapter(model)


def as_json(model: Any, figures: Any) -> Response:
    """The figures as JSON of `model`, the route's documented response model."""
    return Response(_adapter(model).dump_json(figures), media_type="application/json")


def span(
    user: CurrentUser, date_from: date | None, date_to: date | None, default: timedelta
) -> tuple[date, date]:
    end = date_to or today_for(user)
    start = date_from or max(DAY_MIN, end - default)
    if start > end:
        raise unprocessable("query", "date_from", "date_from is after date_to.")
    if end - start > MAX_SPAN:
        raise unprocessable("query", "date_from", "Ask for at most ten years at a time.")
    return start, end


@router.get("/summary", response_model=Summary)
async def summary(user: CurrentUser, session: SessionDep) -> Response:
    """Total wins, this week's, this month's, and categories used this month."""
    return as_json(Summary, await stats.summary(session=session, user=user))


@router.get("/timeline", response_model=list[Point])
async def timeline(
    user: CurrentUser,
    session: SessionDep,
    period: Period = "day",
    date_from: Day = None,
    date_to: Day = None,
) -> Response:
    """Wins per day, week or month; every period is present, empty ones with 0.
    Defaults: the last 30 days, 12 weeks or 12 months."""
    start, end = span(user, date_from, date_to, DEFAULT_SPAN[period])
    figures = await stats.timeline(
        session=session, user=user, period=period, date_from=start, date_to=end
    )
    return as_json(list[Point], figures)


@router.get("/categories", response_model=list[CategoryCount])
async def categories(
    user: CurrentUser,
    session: SessionDep,
    date_from: Day = None,
    date_to: Day = None,
) -> Response:
    """Wins per category (uncategorised ones too), most first."""
    figures = await stats.by_category(
        session=session, user=user, date_from=date_from, date_to=date_to
    )
    return as_json(list[CategoryCount], figures)


@router.get("/mood", response_model=list[MoodPoint])
async def mood(
    user: CurrentUser,
    session: SessionDep,
    date_from: Day = None,
    date_to: Day = None,
) -> Response:
    """Average mood per week (default: the last 26 weeks); weeks without a mood are absent."""
    start, end = span(user, date_from, date_to, timedelta(weeks=26))
    figures = await stats.mood_trend(session=session, user=user, date_from=start, date_to=end)
    return as_json(list[MoodPoint], figures)


@router.get("/streaks", response_model=Streaks)
async def streaks(user: CurrentUser, session: SessionDep) -> Response:
    """Current and longest run of consecutive days with at least one win."""
    return as_json(Streaks, await stats.streaks(session=session, user=user))


@router.get("/heatmap", response_model=list[HeatDay])
async def heatmap(
    user: CurrentUser,
    session: SessionDep,
    year: Annotated[Year | None, Query(description="1900 to 2999")] = None,
) -> Response:
    """Wins per day of a calendar year (default: this year)."""
    wanted = year or today_for(user).year
    figures = await stats.heatmap(session=session, user=user, year=wanted)
    return as_json(list[HeatDay], figures)


@router.get("/on-this-day", response_model=list[EntryRead])
async def on_this_day(user: CurrentUser, session: SessionDep) -> Response:
    """Your wins from today's date in earlier years."""
    views = await stats.on_this_day(session=session, user=user)
    return as_json(list[EntryRead], [v.read() for v in views])


@router.get("/money", response_model=MoneyStats)
async def money_stats(
    user: CurrentUser,
    session: SessionDep,
    period: Period = "month",
    date_from: Day = None,
    date_to: Day = None,
) -> Response:
    """The money your wins earned or saved, in your base currency, per day, week or month and
    per category (defaults: the last 30 days, 12 weeks or 12 months).

    Each win is converted at the ECB reference rate of its own day (or of the latest earlier
    business day, at most a week back), through the euro; amounts in a currency with no rate
    (ECB or one of your manual rates) are listed in `unconverted`, never added to `total`.
    Totals are rounded to the base currency's minor units; decimals are sent as strings."""
    start, end = span(user, date_from, date_to, DEFAULT_SPAN[period])
    figures = await money.money_stats(
        session=session, user=user, period=period, date_from=start, date_to=end
    )
    return as_json(MoneyStats, figures)
