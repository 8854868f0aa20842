"""JSON stats for the dashboard and for API clients, in your time zone and week start."""

from datetime import date, timedelta
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query

from app.deps import CurrentUser, SessionDep
from app.routes.api_entries import entry_read
from app.schemas import EntryRead
from app.services import stats
from app.services.entries import today_for
from app.services.stats import CategoryCount, HeatDay, MoodPoint, Period, Point, Streaks, Summary

router = APIRouter(prefix="/stats", tags=["stats"])
DEFAULT_SPAN = {
    "day": timedelta(days=29),
    "week": timedelta(weeks=11),
    "month": timedelta(days=334),
}
MAX_SPAN = timedelta(days=3700)
Day = Annotated[date | None, Query(description="YYYY-MM-DD")]


def span(
    user: CurrentUser, date_from: date | None, date_to: date | None, default: timedelta
) -> tuple[date, date]:
    end = date_to or today_for(user)
    start = date_from or end - default
    if start > end:
        raise HTTPException(
            422,
            [
                {
                    "loc": ["query", "date_from"],
                    "msg": "date_from is after date_to.",
                    "type": "value_error",
                }
            ],
        )
    if end - start > MAX_SPAN:
        raise HTTPException(
            422,
            [
                {
                    "loc": ["query", "date_from"],
                    "msg": "Ask for at most ten years at a time.",
                    "type": "value_error",
                }
            ],
        )
    return start, end


@router.get("/summary")
async def summary(user: CurrentUser, session: SessionDep) -> Summary:
    """Total wins, this week's, this month's, and categories used this month."""
    return await stats.summary(session=session, user=user)


@router.get("/timeline")
async def timeline(
    user: CurrentUser,
    session: SessionDep,
    period: Period = "day",
    date_from: Day = None,
    date_to: Day = None,
) -> list[Point]:
    """Wins per day, week or month; every period is present, empty ones with 0.
    Defaults: the last 30 days, 12 weeks or 12 months."""
    start, end = span(user, date_from, date_to, DEFAULT_SPAN[period])
    return await stats.timeline(
        session=session, user=user, period=period, date_from=start, date_to=end
    )


@router.get("/categories")
async def categories(
    user: CurrentUser, session: SessionDep, date_from: Day = None, date_to: Day = None
) -> list[CategoryCount]:
    """Wins per category (uncategorised ones too), most first."""
    return await stats.by_category(session=session, user=user, date_from=date_from, date_to=date_to)


@router.get("/mood")
async def mood(
    user: CurrentUser, session: SessionDep, date_from: Day = None, date_to: Day = None
) -> list[MoodPoint]:
    """Average mood per week (default: the last 26 weeks); weeks without a mood are absent."""
    start, end = span(user, date_from, date_to, timedelta(weeks=26))
    return await stats.mood_trend(session=session, user=user, date_from=start, date_to=end)


@router.get("/streaks")
async def streaks(user: CurrentUser, session: SessionDep) -> Streaks:
    """Current and longest run of consecutive days with at least one win."""
    return await stats.streaks(session=session, user=user)


@router.get("/heatmap")
async def heatmap(
    user: CurrentUser,
    session: SessionDep,
    year: Annotated[int | None, Query(ge=1900, le=2999)] = None,
) -> list[HeatDay]:
    """Wins per day of a calendar year (default: this year)."""
    return await stats.heatmap(session=session, user=user, year=year or today_for(user).year)


@router.get("/on-this-day")
async def on_this_day(user: CurrentUser, session: SessionDep) -> list[EntryRead]:
    """Your wins from today's date in earlier years."""
    return [entry_read(v) for v in await stats.on_this_day(session=session, user=user)]
