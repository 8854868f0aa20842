"""Insight pages: the dashboard (charts fed by /api/v1/stats, a server-drawn heatmap) and
the review page, a printable brag document for a week, month or year."""

from datetime import date, timedelta
from typing import Any, Literal

from fastapi import APIRouter, Request
from starlette.responses import Response

from app.cache import cached
from app.db import get_session
from app.models import User
from app.services import money, stats
from app.services.entries import today_for
from app.templating import render, request_locale
from app.web import PageUser

router = APIRouter(include_in_schema=False)
Period = Literal["week", "month", "year"]


def heatmap_weeks(days: list[stats.HeatDay], week_start: int) -> list[list[stats.HeatDay | None]]:
    """Columns of seven days (a week each) for the heatmap grid; padding cells are None."""
    pad = (days[0].day.weekday() - week_start) % 7
    cells: list[stats.HeatDay | None] = [None] * pad + list(days)
    cells += [None] * (-len(cells) % 7)
    return [cells[i : i + 7] for i in range(0, len(cells), 7)]


def level(count: int) -> int:
    return min(count, 4)


@router.get("/dashboard")
async def dashboard(request: Request, user: PageUser, year: int | None = None) -> Response:
    return await cached(request, user, lambda: _dashboard(request, user, year))


async def _dashboard(request: Request, user: User, year: int | None) -> Response:
    session = await get_session(request)  # only when the page is not cached
    today = today_for(user)
    year = year if year and 1900 <= year <= 2999 else today.year
    figures = await stats.overview(session=session, user=user, year=year)
    ctx: dict[str, Any] = {"user": user, "summary": figures.summary, "today": today, "year": year}
    if figures.summary.total:
        days = figures.heatmap
        ctx |= {
            "streaks": figures.streaks,
            "categories": figures.categories,
            "on_this_day": await stats.on_this_day(session=session, user=user, today=today),
            "weeks": heatmap_weeks(days, user.week_start),
            "year_total": sum(d.count for d in days),
            "active_days": sum(1 for d in days if d.count),
            "level": level,
        } | await _money(request, session, user, *money.dashboard_range(today))
    await session.close()  # the connection goes back to the pool before rendering, not after
    return render(request, "insights/dashboard.html", ctx)


def _shift(period: Period, start: date, forward: bool) -> date:
    if period == "week":
        return start + timedelta(days=7 if forward else -7)
    if period == "month":
        return (
            (start + timedelta(days=32)).replace(day=1)
            if forward
            else (start - timedelta(days=1)).replace(day=1)
        )
    return start.replace(year=start.year + (1 if forward else -1))


@router.get("/review")
async def review(
    request: Request,
    user: PageUser,
    period: Period = "month",
    date: date | None = None,
) -> Response:
    return await cached(request, user, lambda: _review(request, user, period, date))


async def _review(request: Request, user: User, period: Period, date: date | None) -> Response:
    session = await get_session(request)  # only when the page is not cached
    anchor = date or today_for(user)
    result = await stats.review(session=session, user=user, period=period, anchor=anchor)
    names = {c.category_id: c for c in result.by_category}
    groups: dict[int | None, list[Any]] = {}
    for entry in result.entries:
        groups.setdefault(entry.category_id, []).append(entry)
    ctx = {
        "user": user,
        "period": period,
        "review": result,
        "groups": [(names[cid], groups.get(cid, [])) for cid in names],
        "previous": _shift(period, result.start, False),
        "next": _shift(period, result.start, True),
        "today": today_for(user),
    } | await _money(request, session, user, result.start, result.end)
    return render(request, "insights/review.html", ctx)


async def _money(
    request: Request, session: Any, user: User, start: date, end: date
) -> dict[str, Any]:
    """The context of insights/_money.html: the money of [start, end] by month."""
    figures = await money.money_stats(
        session=session, user=user, period="month", date_from=start, date_to=end
    )
    return {"money_stats": figures, "money_locale": request_locale(request)}
