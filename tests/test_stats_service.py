"""Insights with hand-computed expectations, on SQLite and PostgreSQL."""

from datetime import date

import httpx
import pytest
import time_machine

from app.models import Entry
from app.schemas import EntryCreate
from app.services import categories, entries, stats
from tests.factories import bearer_token, make_entry


async def add(session, user, day: str, **extra):  # type: ignore[no-untyped-def]
    return await make_entry(session, user, day=day, **extra)


async def test_a_win_at_2330_local_time_lands_on_the_local_day(session, alice):
    alice.timezone = "America/New_York"
    with time_machine.travel(
        "2026-03-11 03:30:00+00:00", tick=False
    ):  # 23:30 on 10 March in New York
        entry = await entries.create_entry(
            session=session, user=alice, data=EntryCreate(title="late win")
        )
        today = entries.today_for(alice)
        summary = await stats.summary(session=session, user=alice)
    assert entry.day == date(2026, 3, 10) == today
    assert summary.total == 1 and summary.this_month == 1


async def test_today_follows_a_dst_change(session, alice):
    alice.timezone = "Europe/Berlin"
    # 00:30 UTC on 29 March 2026 is 01:30 CET; at 01:00 UTC clocks jump to 03:00 CEST.
    with time_machine.travel("2026-03-29 00:30:00+00:00", tick=False):
        assert entries.today_for(alice) == date(2026, 3, 29)
    with time_machine.travel("2026-03-28 22:59:00+00:00", tick=False):  # 23:59 CET, still the 28th
        assert entries.today_for(alice) == date(2026, 3, 28)
    with time_machine.travel("2026-10-24 22:30:00+00:00", tick=False):  # 00:30 CEST on the 25th
        assert entries.today_for(alice) == date(2026, 10, 25)


@pytest.mark.parametrize(
    ("week_start", "expected"),
    [
        (
            0,
            [
                (date(2026, 2, 23), 1),
                (date(2026, 3, 2), 2),
                (date(2026, 3, 9), 0),
                (date(2026, 3, 16), 1),
            ],
        ),
        (6, [(date(2026, 3, 1), 3), (date(2026, 3, 8), 0), (date(2026, 3, 15), 1)]),
    ],
)
async def test_weeks_start_on_monday_or_sunday_and_gaps_are_zero(
    session, alice, week_start, expected
):
    alice.week_start = week_start
    for day in ["2026-03-01", "2026-03-02", "2026-03-07", "2026-03-16"]:  # Sun, Mon, Sat, Mon
        await add(session, alice, day)
    points = await stats.timeline(
        session=session,
        user=alice,
        period="week",
        date_from=date(2026, 3, 1),
        date_to=date(2026, 3, 16),
    )
    assert [(p.start, p.count) for p in points] == expected


async def test_days_and_months_are_filled_with_zero(session, alice):
    await add(session, alice, "2024-02-29")
    await add(session, alice, "2024-02-29")
    await add(session, alice, "2024-04-02")
    days = await stats.timeline(
        session=session,
        user=alice,
        period="day",
        date_from=date(2024, 2, 28),
        date_to=date(2024, 3, 1),
    )
    assert [(p.start, p.count) for p in days] == [
        (date(2024, 2, 28), 0),
        (date(2024, 2, 29), 2),
        (date(2024, 3, 1), 0),
    ]
    months = await stats.timeline(
        session=session,
        user=alice,
        period="month",
        date_from=date(2024, 1, 15),
        date_to=date(2024, 4, 30),
    )
    assert [(p.start, p.count) for p in months] == [
        (date(2024, 1, 1), 0),
        (date(2024, 2, 1), 2),
        (date(2024, 3, 1), 0),
        (date(2024, 4, 1), 1),
    ]


async def test_streaks_run_across_the_year_end(session, alice):
    for day in [
        "2025-12-29",
        "2025-12-30",
        "2025-12-31",
        "2026-01-01",
        "2026-01-02",  # 5 days
        "2026-01-04",
        "2026-01-05",
        "2026-01-05",
    ]:  # 2 days, two wins on the 5th
        await add(session, alice, day)
    with time_machine.travel("2026-01-06 12:00:00+00:00", tick=False):
        result = await stats.streaks(session=session, user=alice)
    assert (result.longest, result.longest_start, result.longest_end) == (
        5,
        date(2025, 12, 29),
        date(2026, 1, 2),
    )
    assert result.current == 2, "yesterday's win keeps today's streak alive"
    with time_machine.travel("2026-01-08 12:00:00+00:00", tick=False):
        assert (await stats.streaks(session=session, user=alice)).current == 0


async def test_mood_is_averaged_per_week_and_weeks_without_mood_are_absent(session, alice):
    await add(session, alice, "2026-03-02", mood=5)
    await add(session, alice, "2026-03-04", mood=2)
    await add(session, alice, "2026-03-05")
    await add(session, alice, "2026-03-18", mood=4)
    points = await stats.mood_trend(
        session=session, user=alice, date_from=date(2026, 3, 1), date_to=date(2026, 3, 31)
    )
    assert [(p.week_start, p.average, p.entries) for p in points] == [
        (date(2026, 3, 2), 3.5, 2),
        (date(2026, 3, 16), 4.0, 1),
    ]


async def test_wins_by_category_include_uncategorised(session, alice):
    rows = await categories.list_categories(session=session, user=alice)
    cats = {row.category.name: row.category.id for row in rows}
    await add(session, alice, "2026-01-01", category_id=cats["Work"])
    await add(session, alice, "2026-01-02", category_id=cats["Work"])
    await add(session, alice, "2026-01-03")
    result = await stats.by_category(session=session, user=alice)
    assert [(c.name, c.count) for c in result] == [("Work", 2), ("Uncategorised", 1)]


async def test_the_overviews_total_and_first_day_take_every_category(session, alice):
    """The overview counts wins per category and sums them: the total is every category's,
    the first day the earliest of any (here neither the first nor the last category's)."""
    rows = await categories.list_categories(session=session, user=alice)
    ids = sorted(row.category.id for row in rows)
    await add(session, alice, "2025-06-01", category_id=ids[0])
    await add(session, alice, "2021-02-03", category_id=ids[1])
    await add(session, alice, "2023-01-01", category_id=ids[1])
    await add(session, alice, "2024-04-04", category_id=ids[2])
    await add(session, alice, "2022-09-09")
    binned = await add(session, alice, "2019-01-01")
    await entries.delete_entry(session=session, user=alice, entry=binned)
    figures = await stats.overview(session=session, user=alice, year=2026)
    assert figures.summary.total == 5 == sum(c.count for c in figures.categories)
    assert figures.first_day == date(2021, 2, 3)


async def test_heatmap_covers_every_day_of_a_leap_year(session, alice):
    await add(session, alice, "2024-02-29")
    days = await stats.heatmap(session=session, user=alice, year=2024)
    assert len(days) == 366
    assert [(d.day, d.count) for d in days if d.count] == [(date(2024, 2, 29), 1)]


async def test_on_this_day_shows_earlier_years_and_leap_days_on_28_february(session, alice):
    for day in ["2024-02-29", "2025-02-28", "2026-02-28", "2023-03-01"]:
        await add(session, alice, day)
    found = await stats.on_this_day(session=session, user=alice, today=date(2027, 2, 28))
    assert [v.entry.day for v in found] == [date(2026, 2, 28), date(2025, 2, 28), date(2024, 2, 29)]
    leap = await stats.on_this_day(session=session, user=alice, today=date(2028, 2, 29))
    assert [v.entry.day for v in leap] == [date(2024, 2, 29)]


async def test_summary_counts_this_week_and_month_in_the_users_calendar(session, alice):
    alice.week_start = 6  # Sunday
    for day in ["2026-03-01", "2026-03-07", "2026-03-08", "2026-02-28"]:
        await add(session, alice, day)
    with time_machine.travel("2026-03-09 12:00:00+00:00", tick=False):  # a Monday
        summary = await stats.summary(session=session, user=alice)
    assert (summary.total, summary.this_week, summary.this_month) == (4, 1, 3)


async def test_review_of_a_month(session, alice):
    await add(session, alice, "2026-03-01", mood=4, tags=["run"])
    await add(session, alice, "2026-03-02", mood=2, tags=["run", "work"])
    await add(session, alice, "2026-04-01", mood=5, tags=["x"])
    review = await stats.review(
        session=session, user=alice, period="month", anchor=date(2026, 3, 15)
    )
    assert (review.start, review.end, review.total) == (date(2026, 3, 1), date(2026, 3, 31), 2)
    assert review.top_tags == [("run", 2), ("work", 1)]
    assert (review.average_mood, review.best_streak) == (3.0, 2)


async def test_bob_sees_none_of_alices_figures(client: httpx.AsyncClient, session, alice, bob):
    await add(session, alice, "2026-01-01", mood=5)
    token = await bearer_token(client, "bob@example.com")
    auth = {"Authorization": f"Bearer {token}"}
    assert (await client.get("/api/v1/stats/summary", headers=auth)).json()["total"] == 0
    assert (await client.get("/api/v1/stats/streaks", headers=auth)).json()["longest"] == 0
    assert (await client.get("/api/v1/stats/categories", headers=auth)).json() == []
    heat = (await client.get("/api/v1/stats/heatmap?year=2026", headers=auth)).json()
    assert sum(d["count"] for d in heat) == 0
    assert (
        await client.get("/api/v1/stats/mood?date_from=2025-12-01&date_to=2026-01-31", headers=auth)
    ).json() == []


async def test_stats_endpoints_answer_and_check_their_input(
    client: httpx.AsyncClient, session, alice
):
    await add(session, alice, "2026-01-01")
    auth = {"Authorization": f"Bearer {await bearer_token(client, 'alice@example.com')}"}
    for url in [
        "/api/v1/stats/summary",
        "/api/v1/stats/timeline?period=month",
        "/api/v1/stats/categories",
        "/api/v1/stats/mood",
        "/api/v1/stats/streaks",
        "/api/v1/stats/heatmap",
        "/api/v1/stats/on-this-day",
    ]:
        assert (await client.get(url, headers=auth)).status_code == 200, url
    for url in [
        "/api/v1/stats/timeline?period=year",
        "/api/v1/stats/timeline?date_from=2026-02-01&date_to=2026-01-01",
        "/api/v1/stats/timeline?date_from=1990-01-01&date_to=2026-01-01",
        "/api/v1/stats/heatmap?year=99999",
    ]:
        assert (await client.get(url, headers=auth)).status_code == 422, url
    assert (await client.get("/api/v1/stats/summary")).status_code == 401


async def test_deleted_entries_do_not_count(session, alice):
    entry: Entry = await add(session, alice, "2026-01-01")
    await entries.delete_entry(session=session, user=alice, entry=entry)
    assert (await stats.summary(session=session, user=alice)).total == 0


async def test_the_overview_reads_days_of_its_range_but_counts_the_whole_diary(session, alice):
    """With `since`, the wins per day cover the range and the heatmap's year only; the total,
    the first day, the categories and the streaks (the longest years ago) stay all-time."""
    for day in ["2019-03-01", "2019-03-02", "2019-03-03", "2019-03-04", "2024-05-05"]:
        await add(session, alice, day)
    for day in ["2026-11-20", "2026-12-01", "2026-12-02"]:
        await add(session, alice, day)
    with time_machine.travel("2026-12-02 12:00:00+00:00", tick=False):
        figures = await stats.overview(
            session=session, user=alice, year=2024, since=date(2026, 11, 1)
        )
        assert figures.summary == await stats.summary(session=session, user=alice)
        assert figures.streaks == await stats.streaks(session=session, user=alice)
        assert figures.categories == await stats.by_category(session=session, user=alice)
        assert figures.heatmap == await stats.heatmap(session=session, user=alice, year=2024)
    assert figures.summary.total == 8 and figures.first_day == date(2019, 3, 1)
    assert (figures.streaks.longest, figures.streaks.current) == (4, 2)
    assert (figures.streaks.longest_start, figures.streaks.longest_end) == (
        date(2019, 3, 1),
        date(2019, 3, 4),
    )
    assert sorted(figures.days) == [
        date(2024, 5, 5),
        date(2026, 11, 20),
        date(2026, 12, 1),
        date(2026, 12, 2),
    ]
