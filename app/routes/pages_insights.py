"""Insight pages: the dashboard (server-drawn tables and heatmap, which Chart.js turns into
charts) and the review page, a printable brag document for a week, month or year.

Every figure is in the HTML, so the pages work with JavaScript off; the range and grouping of
the timeline are query parameters (links), not buttons that need a script.
"""

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from app.deps import PageUser, SessionDep
from app.forms import query_day
from app.models import User
from app.schemas import DAY_MAX, DAY_MIN, DAY_RANGE
from app.services import money, stats
from app.services.entries import today_for, with_photos
from app.templating import flash, render, request_locale

router = APIRouter(include_in_schema=False)
Period = Literal["week", "month", "year"]
Range = Literal["12w", "6m", "1y", "all"]
RANGES: dict[str, str] = {"12w": "12 weeks", "6m": "6 months", "1y": "1 year", "all": "All"}
GROUPS: dict[str, str] = {"day": "Days", "week": "Weeks", "month": "Months"}
MOOD_WEEKS = 26
WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]


@dataclass
class Row:
    """One row of a chart's table: the period's first day, its labels and its figure."""

    start: date
    axis: str  # short, for the chart's axis: "12 Nov", "Nov 2026"
    label: str  # in full, for the table: "Week of 12 Nov 2026"
    value: float


@dataclass
class HeatGrid:
    weeks: list[list[stats.HeatDay | None]]  # columns of seven days; padding cells are None
    months: list[tuple[int, str]]  # (column, "Jan") where each month begins
    weekdays: list[str]  # row labels, from the user's week start


def heatmap_weeks(days: list[stats.HeatDay], week_start: int) -> list[list[stats.HeatDay | None]]:
    """Columns of seven days (a week each) for the heatmap grid; padding cells are None."""
    pad = (days[0].day.weekday() - week_start) % 7
    cells: list[stats.HeatDay | None] = [None] * pad + list(days)
    cells += [None] * (-len(cells) % 7)
    return [cells[i : i + 7] for i in range(0, len(cells), 7)]


def heat_grid(days: list[stats.HeatDay], week_start: int, today: date) -> HeatGrid:
    """The year up to today (so the newest week ends the grid), with its month and day labels."""
    shown = [d for d in days if d.day <= today] or days[:1]
    weeks = heatmap_weeks(shown, week_start)
    months = [
        (i, cell.day.strftime("%b"))
        for i, week in enumerate(weeks)
        for cell in week
        if cell and (cell.day.day == 1 or cell is shown[0])
    ]
    return HeatGrid(weeks, months, WEEKDAYS[week_start:] + WEEKDAYS[:week_start])


def level(count: int) -> int:
    return min(count, 4)


def _months_back(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 - months
    return date(index // 12, index % 12 + 1, 1)


def timeline_start(span: Range, by: stats.Period, user: User, first_day: date | None) -> date:
    """The first day of the range (for "all", of the first win's), moved back to the start of
    its week or month."""
    today = today_for(user)
    start = {
        "12w": lambda: today - timedelta(weeks=11),
        "6m": lambda: _months_back(today, 5),
        "1y": lambda: _months_back(today, 11),
        "all": lambda: min(first_day or today, today),
    }[span]()
    if by == "day":  # a point per day: at most MAX_TIMELINE_POINTS of them, the newest
        start = max(start, today - timedelta(days=stats.MAX_TIMELINE_POINTS - 1))
    return stats.periods(by, start, start, user)[0]


def _short(day: date, with_year: bool) -> str:
    return f"{day.day} {day:%b}" + (f" {day.year}" if with_year else "")


def rows_of(points: list[stats.Point], by: stats.Period) -> list[Row]:
    with_year = bool(points) and points[0].start.year != points[-1].start.year
    out = []
    for p in points:
        if by == "month":
            out.append(Row(p.start, f"{p.start:%b %Y}", f"{p.start:%B %Y}", p.count))
        else:
            label = f"{p.start.day} {p.start:%b %Y}"
            label = f"{p.start:%a} {label}" if by == "day" else label
            out.append(Row(p.start, _short(p.start, with_year), label, p.count))
    return out


def mood_rows(points: list[stats.MoodPoint]) -> list[tuple[Row, int]]:
    with_year = bool(points) and points[0].week_start.year != points[-1].week_start.year
    return [
        (
            Row(
                p.week_start,
                _short(p.week_start, with_year),
                f"{p.week_start.day} {p.week_start:%b %Y}",
                p.average,
            ),
            p.entries,
        )
        for p in points
    ]


def _out_of_range(request: Request) -> int:
    """Say so on the page (shown for the default dates instead) and answer 422."""
    flash(request, DAY_RANGE, "error")
    return 422


@router.get("/dashboard")
async def dashboard(
    request: Request,
    user: PageUser,
    session: SessionDep,
    year: int | None = None,
    span: Annotated[Range, Query(alias="range")] = "12w",
    by: stats.Period | None = None,
) -> Response:
    group: stats.Period = by or ("month" if span == "all" else "week")
    status = 200
    if year is not None and not DAY_MIN.year <= year <= DAY_MAX.year:
        year, status = None, _out_of_range(request)
    today = today_for(user)
    year = year or today.year
    # The charts' range (all time reads every day; the others only theirs, and the year's).
    since = (
        None if span == "all" else min(timeline_start(span, group, user, None), _mood_from(user))
    )
    figures = await stats.overview(session=session, user=user, year=year, since=since)
    ctx: dict[str, Any] = {"user": user, "summary": figures.summary, "today": today, "year": year}
    if figures.summary.total:
        ctx |= {
            "streaks": figures.streaks,
            "categories": figures.categories,
            "on_this_day": await stats.on_this_day(session=session, user=user, today=today),
            "heat": heat_grid(figures.heatmap, user.week_start, today),
            "year_total": sum(d.count for d in figures.heatmap),
            "active_days": sum(1 for d in figures.heatmap if d.count),
            "level": level,
        } | _charts(figures, user, span, group)
        ctx |= await _money(request, session, user, *money.dashboard_range(today))
    await session.close()  # the connection goes back to the pool before rendering, not after
    return render(request, "insights/dashboard.html", ctx, status_code=status)


def _mood_from(user: User) -> date:
    """The first day of the mood chart: the start of the week MOOD_WEEKS - 1 weeks back."""
    return stats.week_start_of(today_for(user), user.week_start) - timedelta(weeks=MOOD_WEEKS - 1)


def _charts(figures: stats.Overview, user: User, span: Range, by: stats.Period) -> dict[str, Any]:
    """The timeline and mood tables, from the overview's wins per day (no more statements)."""
    today = today_for(user)
    start = timeline_start(span, by, user, figures.first_day)
    points = stats.timeline_of(figures, user=user, period=by, date_from=start, date_to=today)
    mood_from = _mood_from(user)
    moods = stats.mood_of(figures, user=user, date_from=mood_from, date_to=today)
    return {
        "span": span,
        "by": by,
        "ranges": RANGES,
        "groups": GROUPS,
        "timeline": rows_of(points, by),
        "timeline_from": start,
        "mood": mood_rows(moods),
        "mood_from": mood_from,
    }


def _shift(period: Period, start: date, forward: bool) -> date:
    if period == "week":
        return start + timedelta(days=7 if forward else -7)
    if period == "month":
        return _months_back(start, -1 if forward else 1)
    return start.replace(year=start.year + (1 if forward else -1))


def _period_name(period: Period, start: date) -> str:
    """How the links to the previous and next periods name them."""
    if period == "week":
        return f"Week of {start.day} {start:%b}"
    return f"{start:%b %Y}" if period == "month" else str(start.year)


@router.get("/review")
async def review(
    request: Request,
    user: PageUser,
    session: SessionDep,
    period: Period = "month",
    date: str | None = None,
) -> Response:
    anchor, status = query_day(request, date)
    today = today_for(user)
    result = await stats.review(session=session, user=user, period=period, anchor=anchor or today)
    await with_photos(session, result.entries)
    names = {c.category_id: c for c in result.by_category}
    groups: dict[int | None, list[Any]] = {}
    for view in result.entries:
        groups.setdefault(view.entry.category_id, []).append(view)
    previous, following = _shift(period, result.start, False), _shift(period, result.start, True)
    ctx = {
        "user": user,
        "period": period,
        "review": result,
        "categories": names,
        "groups": [(names[cid], groups.get(cid, [])) for cid in names],
        "months": _by_month(result) if period == "year" else [],
        "previous": (previous, _period_name(period, previous)),
        # Never into the future: no link once the next period starts after the user's today.
        "next": (following, _period_name(period, following)) if following <= today else None,
        "today": today,
    } | await _money(request, session, user, result.start, result.end)
    return render(request, "insights/review.html", ctx, status_code=status)


def _by_month(result: stats.Review) -> list[tuple[stats.Point, list[Any]]]:
    """The year's wins month by month, in date order (months without a win left out)."""
    items: dict[date, list[Any]] = {}
    for view in sorted(result.entries, key=lambda v: (v.entry.day, v.entry.id)):
        items.setdefault(view.entry.day.replace(day=1), []).append(view)
    return [(m, items[m.start]) for m in result.by_month if m.count]


async def _money(
    request: Request, session: Any, user: User, start: date, end: date
) -> dict[str, Any]:
    """The context of insights/_money.html: the money of [start, end] by month."""
    figures = await money.money_stats(
        session=session, user=user, period="month", date_from=start, date_to=end
    )
    return {"money_stats": figures, "money_locale": request_locale(request)}
