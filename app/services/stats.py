"""Insights computed in SQL (GROUP BY, one statement per figure), in the user's calendar.

Entries carry the local date they belong to (`entry.day`, chosen in the user's time zone),
so days never shift; weeks start on the user's week start; "today" is the user's today.
Gaps in a timeline are filled with zero here, after the query.
"""

import calendar
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Literal

from sqlalchemy import (
    ColumnElement,
    Date,
    Integer,
    Select,
    String,
    cast,
    extract,
    func,
    literal_column,
    null,
    or_,
    select,
    type_coerce,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.models import Category, Entry, EntryTag, User
from app.schemas import DAY_MIN
from app.services.entries import EntryView, today_for, visible_entries

Period = Literal["day", "week", "month"]
MAX_TIMELINE_POINTS = 3700


@dataclass
class Summary:
    total: int
    this_week: int
    this_month: int
    active_categories: int


@dataclass
class Point:
    start: date
    count: int


@dataclass
class CategoryCount:
    category_id: int | None
    name: str
    colour: str
    count: int


@dataclass
class MoodPoint:
    week_start: date
    average: float
    entries: int


@dataclass
class Streaks:
    current: int
    longest: int
    longest_start: date | None
    longest_end: date | None


@dataclass
class HeatDay:
    day: date
    count: int


@dataclass
class Overview:
    """Everything the dashboard shows above its charts."""

    summary: Summary
    streaks: Streaks
    categories: list[CategoryCount]
    heatmap: list[HeatDay]
    first_day: date | None = None  # of the first win
    # Wins and (mood sum, moods) per day, in the range overview() was asked for.
    days: dict[date, int] = field(default_factory=dict)
    moods: dict[date, tuple[int, int]] = field(default_factory=dict)


@dataclass
class Review:
    start: date
    end: date
    total: int
    by_category: list[CategoryCount]
    top_tags: list[tuple[str, int]]
    average_mood: float | None
    best_streak: int
    entries: list[EntryView] = field(default_factory=list)
    by_month: list[Point] = field(default_factory=list)


def _sqlite(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "sqlite"


def _live(user: User) -> list[ColumnElement[bool]]:
    return [col(Entry.user_id) == user.id, col(Entry.deleted_at).is_(None)]


def week_start_of(day: date, week_start: int) -> date:
    return day - timedelta(days=(day.weekday() - week_start) % 7)


def _week_expr(session: AsyncSession, week_start: int) -> ColumnElement[Any]:
    """The first day of each entry's week, in SQL (0 = Monday ... 6 = Sunday, like Python)."""
    if _sqlite(session):
        # strftime('%w') counts from Sunday = 0; Python's weekday() from Monday = 0.
        back = (cast(func.strftime("%w", Entry.day), Integer) + 13 - week_start) % 7
        return func.date(Entry.day, func.printf("-%d days", back))
    back = (cast(extract("dow", col(Entry.day)), Integer) + 13 - week_start) % 7
    return cast(col(Entry.day) - back, Date)


def _month_expr(session: AsyncSession) -> ColumnElement[Any]:
    if _sqlite(session):
        return func.strftime("%Y-%m-01", Entry.day)
    return cast(func.date_trunc("month", Entry.day), Date)


def as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


async def summary(*, session: AsyncSession, user: User) -> Summary:
    today = today_for(user)
    week = week_start_of(today, user.week_start)
    month = today.replace(day=1)
    stmt = select(
        func.count(),
        func.count().filter(col(Entry.day) >= week, col(Entry.day) <= today),
        func.count().filter(col(Entry.day) >= month, col(Entry.day) <= today),
        func.count(func.distinct(col(Entry.category_id))).filter(col(Entry.day) >= month),
    ).where(*_live(user))
    total, this_week, this_month, active = (await session.execute(stmt)).one()
    return Summary(total, this_week, this_month, active)


async def timeline(
    *, session: AsyncSession, user: User, period: Period, date_from: date, date_to: date
) -> list[Point]:
    """Wins per day, week or month between two dates, every period present (zero if empty)."""
    bucket: ColumnElement[Any] = {
        "day": lambda: col(Entry.day),
        "week": lambda: _week_expr(session, user.week_start),
        "month": lambda: _month_expr(session),
    }[period]().label("bucket")
    stmt = (
        select(bucket, func.count())
        .where(*_live(user), col(Entry.day) >= date_from, col(Entry.day) <= date_to)
        .group_by(bucket)
    )
    counts = {as_date(b): n for b, n in (await session.execute(stmt)).all()}
    return [
        Point(start, counts.get(start, 0)) for start in periods(period, date_from, date_to, user)
    ]


def periods(period: Period, date_from: date, date_to: date, user: User) -> list[date]:
    if period == "day":
        first, step = date_from, None
    elif period == "week":
        first, step = week_start_of(date_from, user.week_start), None
    else:
        first, step = date_from.replace(day=1), "month"
    out: list[date] = []
    current = first
    while current <= date_to and len(out) < MAX_TIMELINE_POINTS:
        out.append(current)
        if step == "month":
            current = (current.replace(day=28) + timedelta(days=4)).replace(day=1)
        else:
            current += timedelta(days=1 if period == "day" else 7)
    return out


async def by_category(
    *, session: AsyncSession, user: User, date_from: date | None = None, date_to: date | None = None
) -> list[CategoryCount]:
    counted = (  # per category first, then the names: a lookup per category, not per win
        select(col(Entry.category_id).label("category_id"), func.count().label("n"))
        .where(*_live(user), *_range(date_from, date_to))
        .group_by(col(Entry.category_id))
        .subquery()
    )
    stmt = (
        select(counted.c.category_id, col(Category.name), col(Category.colour), counted.c.n)
        .outerjoin_from(counted, Category, col(Category.id) == counted.c.category_id)
        .order_by(counted.c.n.desc(), col(Category.name).nulls_first())
    )
    return [
        CategoryCount(cid, name or "Uncategorised", colour or "#94a3b8", n)
        for cid, name, colour, n in (await session.execute(stmt)).all()
    ]


def _range(date_from: date | None, date_to: date | None) -> list[ColumnElement[bool]]:
    clauses = []
    if date_from is not None:
        clauses.append(col(Entry.day) >= date_from)
    if date_to is not None:
        clauses.append(col(Entry.day) <= date_to)
    return clauses


async def mood_trend(
    *, session: AsyncSession, user: User, date_from: date, date_to: date
) -> list[MoodPoint]:
    """Average mood per week (weeks without a mood are left out, not shown as zero)."""
    week = _week_expr(session, user.week_start).label("week")
    stmt = (
        select(week, func.avg(col(Entry.mood)), func.count(col(Entry.mood)))
        .where(*_live(user), col(Entry.mood).is_not(None), *_range(date_from, date_to))
        .group_by(week)
        .order_by(week)
    )
    return [
        MoodPoint(as_date(w), round(float(avg), 2), n)
        for w, avg, n in (await session.execute(stmt)).all()
    ]


def _islands(
    session: AsyncSession, user: User, date_from: date | None = None, date_to: date | None = None
) -> Select[Any]:
    """The runs of consecutive days with a win: first, last, length (gaps and islands: a
    day's number in date order taken from the day itself is the same along a run)."""
    days = (
        select(col(Entry.day).label("day"))
        .where(*_live(user), *_range(date_from, date_to))
        .distinct()
        .subquery()
    )
    number = func.row_number().over(order_by=days.c.day)
    if _sqlite(session):
        island = (func.julianday(days.c.day) - number).label("island")
    else:
        island = (days.c.day - cast(number, Integer)).label("island")
    runs = select(days.c.day, island).subquery()
    return select(
        func.min(runs.c.day).label("first"),
        func.max(runs.c.day).label("last"),
        func.count().label("length"),
    ).group_by(runs.c.island)


async def streaks(
    *, session: AsyncSession, user: User, date_from: date | None = None, date_to: date | None = None
) -> Streaks:
    """Runs of consecutive days with at least one win (gaps and islands, in one statement)."""
    stmt = _islands(session, user, date_from, date_to)
    islands = [(as_date(a), as_date(b), n) for a, b, n in (await session.execute(stmt)).all()]
    return _longest_and_current(islands, date_to or today_for(user))


def _longest_and_current(islands: list[tuple[date, date, int]], today: date) -> Streaks:
    """From runs (first day, last day, length): the longest (latest on a tie) and today's."""
    if not islands:
        return Streaks(0, 0, None, None)
    start, end, longest = max(islands, key=lambda r: (r[2], r[1]))
    current = next((n for _, last, n in islands if last in (today, today - timedelta(days=1))), 0)
    return Streaks(current, longest, start, end)


async def heatmap(*, session: AsyncSession, user: User, year: int) -> list[HeatDay]:
    """Wins per day of a calendar year (every day present)."""
    first, last = date(year, 1, 1), date(year, 12, 31)
    stmt = (
        select(col(Entry.day), func.count())
        .where(*_live(user), col(Entry.day) >= first, col(Entry.day) <= last)
        .group_by(col(Entry.day))
    )
    return _year_days(year, {as_date(d): n for d, n in (await session.execute(stmt)).all()})


def _year_days(year: int, counts: dict[date, int]) -> list[HeatDay]:
    first, last = date(year, 1, 1), date(year, 12, 31)
    return [
        HeatDay(first + timedelta(days=i), counts.get(first + timedelta(days=i), 0))
        for i in range((last - first).days + 1)
    ]


async def on_this_day(
    *, session: AsyncSession, user: User, today: date | None = None
) -> list[EntryView]:
    """Entries from this date in earlier years; on 28 February of a common year, 29 February too.

    The dates are listed (one a year back to DAY_MIN), so the index finds each day's entries;
    a test of every entry's month and day read the whole diary."""
    today = today or today_for(user)
    wanted = [(today.month, today.day)]
    if today.month == 2 and today.day == 28 and not calendar.isleap(today.year):
        wanted.append((2, 29))
    days = [
        date(year, month, day)
        for year in range(DAY_MIN.year, today.year)
        for month, day in wanted
        if day <= calendar.monthrange(year, month)[1]
    ]
    stmt = (
        visible_entries(user)
        .where(col(Entry.day).in_(days))
        .order_by(col(Entry.day).desc(), col(Entry.id).desc())
        .limit(20)
    )
    return [EntryView(e, c) for e, c in (await session.execute(stmt)).all()]


def review_range(
    period: Literal["week", "month", "year"], anchor: date, user: User
) -> tuple[date, date]:
    if period == "week":
        start = week_start_of(anchor, user.week_start)
        return start, start + timedelta(days=6)
    if period == "month":
        start = anchor.replace(day=1)
        return start, start.replace(day=calendar.monthrange(start.year, start.month)[1])
    return date(anchor.year, 1, 1), date(anchor.year, 12, 31)


async def top_tags(
    *, session: AsyncSession, user: User, date_from: date, date_to: date, limit: int = 10
) -> list[tuple[str, int]]:
    stmt = (
        select(col(EntryTag.tag), func.count())
        .join(Entry, col(Entry.id) == col(EntryTag.entry_id))
        .where(*_live(user), *_range(date_from, date_to))
        .group_by(col(EntryTag.tag))
        .order_by(func.count().desc(), col(EntryTag.tag))
        .limit(limit)
    )
    return [(tag, n) for tag, n in (await session.execute(stmt)).all()]


async def average_mood(
    *, session: AsyncSession, user: User, date_from: date, date_to: date
) -> float | None:
    stmt = select(func.avg(col(Entry.mood))).where(*_live(user), *_range(date_from, date_to))
    value = (await session.execute(stmt)).scalar_one_or_none()
    return None if value is None else round(float(value), 2)


async def review(
    *, session: AsyncSession, user: User, period: Literal["week", "month", "year"], anchor: date
) -> Review:
    """A brag document: the period's wins by category and by month, top tags, mood and best
    streak."""
    start, end = review_range(period, anchor, user)
    categories = await by_category(session=session, user=user, date_from=start, date_to=end)
    stmt = (
        visible_entries(user)
        .where(*_range(start, end))
        .order_by(col(Entry.category_id), col(Entry.day), col(Entry.id))
    )
    items = [EntryView(e, c) for e, c in (await session.execute(stmt)).all()]
    return Review(
        start=start,
        end=end,
        total=sum(c.count for c in categories),
        by_category=categories,
        top_tags=await top_tags(session=session, user=user, date_from=start, date_to=end),
        average_mood=await average_mood(session=session, user=user, date_from=start, date_to=end),
        best_streak=(
            await streaks(session=session, user=user, date_from=start, date_to=end)
        ).longest,
        entries=items,
        by_month=_count_by(Counter(v.entry.day for v in items), "month", start, end, user),
    )


async def overview(
    *, session: AsyncSession, user: User, year: int, since: date | None = None
) -> Overview:
    """Summary, streaks, wins by category, a year's heatmap and the wins per day the charts
    show, in one statement (one round trip, UNION ALL of a few rows each):

    wins per day from `since` on (None: since the first) and in `year`, not for all time, so
    what is read into Python grows with the range shown, not with the diary (ten years of
    daily wins were 16,675 rows: 150 ms of a dashboard); wins per category with the first day
    of each, all time (their sum is the total, the earliest the first day) and this month,
    counted before the names are joined (a lookup per category, not per win); and the
    longest and the current streak, found by the database (gaps and islands, as streaks()).
    """
    today = today_for(user)
    week, month = week_start_of(today, user.week_start), today.replace(day=1)
    nothing = null()
    shown: list[ColumnElement[bool]] = [
        col(Entry.day).between(date(year, 1, 1), date(year, 12, 31))
    ]
    if since is not None:
        shown.append(col(Entry.day) >= min(since, week, month))
    per_day: Select[Any] = (
        select(
            literal_column("0"),
            type_coerce(col(Entry.day), String),  # as_date parses it, as below
            nothing,
            nothing,
            nothing,
            func.count(),
            func.sum(col(Entry.mood)),
            func.count(col(Entry.mood)),
        )
        .where(*_live(user), *([or_(*shown)] if since is not None else []))
        .group_by(col(Entry.day))
    )

    def per_category(kind: str, *since: ColumnElement[bool]) -> Select[Any]:
        counted = (
            select(
                col(Entry.category_id).label("category_id"),
                func.min(col(Entry.day)).label("first"),
                func.count().label("n"),
            )
            .where(*_live(user), *since)
            .group_by(col(Entry.category_id))
            .subquery()
        )
        return select(
            literal_column(kind),
            type_coerce(counted.c.first, String),
            counted.c.category_id,
            col(Category.name),
            col(Category.colour),
            counted.c.n,
            nothing,
            nothing,
        ).outerjoin_from(counted, Category, col(Category.id) == counted.c.category_id)

    runs = _islands(session, user).cte("runs")

    def streak(kind: str, chosen: Select[Any]) -> Select[Any]:
        """One run of days, as a row of the union: its first day and its length."""
        found = (
            chosen.add_columns(
                literal_column(kind).label("kind"),
                type_coerce(runs.c.first, String).label("first"),
                runs.c.length,
            )
            .select_from(runs)
            .limit(1)
            .subquery()
        )
        return select(
            found.c.kind, found.c.first, *(nothing,) * 3, found.c.length, nothing, nothing
        )

    longest = select().order_by(runs.c.length.desc(), runs.c.last.desc())  # latest on a tie
    current = select().where(runs.c.last.in_([today, today - timedelta(days=1)]))
    stmt = union_all(  # typed columns first: PostgreSQL makes NULL UNION NULL text
        per_day,
        per_category("1"),
        per_category("2", col(Entry.day) >= month),
        streak("3", longest),
        streak("4", current),
    )
    per_day_counts: dict[date, int] = {}
    moods: dict[date, tuple[int, int]] = {}
    categories: list[CategoryCount] = []
    active_categories = total = 0
    first_day: date | None = None
    streaks = Streaks(0, 0, None, None)
    for kind, day, cid, name, colour, n, mood_sum, moods_n in (await session.execute(stmt)).all():
        if kind == 0:
            per_day_counts[as_date(day)] = n
            if moods_n:
                moods[as_date(day)] = (int(mood_sum), moods_n)
        elif kind == 1:
            categories.append(CategoryCount(cid, name or "Uncategorised", colour or "#94a3b8", n))
            total, began = total + n, as_date(day)
            first_day = began if first_day is None else min(first_day, began)
        elif kind == 2:
            active_categories += cid is not None
        elif kind == 3:
            first = as_date(day)
            streaks.longest, streaks.longest_start = n, first
            streaks.longest_end = first + timedelta(days=n - 1)
        else:
            streaks.current = n
    summary = Summary(
        total=total,
        this_week=sum(n for d, n in per_day_counts.items() if week <= d <= today),
        this_month=sum(n for d, n in per_day_counts.items() if month <= d <= today),
        active_categories=active_categories,
    )
    categories.sort(key=lambda c: (-c.count, c.category_id is not None, c.name))
    return Overview(
        summary=summary,
        streaks=streaks,
        categories=categories,
        heatmap=_year_days(year, {d: n for d, n in per_day_counts.items() if d.year == year}),
        first_day=first_day,
        days=per_day_counts,
        moods=moods,
    )


def _bucket(day: date, period: Period, week_start: int) -> date:
    if period == "week":
        return week_start_of(day, week_start)
    return day.replace(day=1) if period == "month" else day


def _count_by(
    days: Mapping[date, int], period: Period, first: date, last: date, user: User
) -> list[Point]:
    """Wins per day, week or month between two dates, from wins per day (every period present)."""
    counts: Counter[date] = Counter()
    for day, n in days.items():
        if first <= day <= last:
            counts[_bucket(day, period, user.week_start)] += n
    return [Point(s, counts[s]) for s in periods(period, first, last, user)]


def timeline_of(
    figures: Overview, *, user: User, period: Period, date_from: date, date_to: date
) -> list[Point]:
    """timeline() from the wins per day the overview already holds: no second statement."""
    return _count_by(figures.days, period, date_from, date_to, user)


def mood_of(figures: Overview, *, user: User, date_from: date, date_to: date) -> list[MoodPoint]:
    """mood_trend() from the overview's moods per day (the same sums, so the same averages)."""
    weeks: dict[date, tuple[int, int]] = {}
    for day, (total, n) in sorted(figures.moods.items()):
        if date_from <= day <= date_to:
            week = week_start_of(day, user.week_start)
            old_total, old_n = weeks.get(week, (0, 0))
            weeks[week] = (old_total + total, old_n + n)
    return [MoodPoint(w, round(total / n, 2), n) for w, (total, n) in weeks.items()]
