"""The insight pages without JavaScript, as a phone sees them: the dashboard's figures are in
server-drawn tables, the heatmap has labels, a key and a link per day with wins, the timeline
reaches back past twelve weeks, a year's review is a summary with its months folded, "Next"
never leads into the future, and new categories never take the grey of "Uncategorised"."""

import re
from datetime import date, timedelta

import pytest
import time_machine

from app.models import Entry, EntryTag
from app.routes.pages_insights import timeline_start
from app.services import categories, stats
from tests.factories import make_entry, post_form, sign_in

TODAY = "2026-11-22 12:00:00+00:00"  # a Sunday; alice's weeks start on Monday


async def add(session, user, day: str, **extra):  # type: ignore[no-untyped-def]
    return await make_entry(session, user, day=day, **extra)


def table(page: str, name: str) -> list[list[str]]:
    """The rows of the table marked data-table-for=name: its header cell, then its cells."""
    match = re.search(rf'<table[^>]*data-table-for="{name}".*?</table>', page, re.S)
    assert match, f"no table for {name}"
    rows = re.findall(r"<tr[^>]*>\s*<th scope=\"row\">(.*?)</th>(.*?)</tr>", match.group(0), re.S)
    return [
        [re.sub(r"<[^>]+>", "", th).strip(), *re.findall(r"<td>(.*?)</td>", cells)]
        for th, cells in rows
    ]


async def category_id(session, user, name: str) -> int:  # type: ignore[no-untyped-def]
    rows = await categories.list_categories(session=session, user=user)
    found = next(r.category.id for r in rows if r.category.name == name)
    assert found is not None
    return found


@pytest.fixture
async def alices_month(session, alice):  # type: ignore[no-untyped-def]
    """Five wins: two on Mon 16 Nov (Work, moods 4 and 5), one on Fri 20 Nov (mood 2), one on
    Sun 22 Nov (Health), one on 3 Sep (outside twelve weeks)."""
    work = await category_id(session, alice, "Work")
    health = await category_id(session, alice, "Health")
    await add(session, alice, "2026-11-16", title="Shipped it", category_id=work, mood=4)
    await add(session, alice, "2026-11-16", title="Reviewed it", category_id=work, mood=5)
    await add(session, alice, "2026-11-20", title="Ran 5k", mood=2)
    await add(session, alice, "2026-11-22", title="Slept well", category_id=health)
    await add(session, alice, "2026-09-03", title="Old win")


async def dashboard(client, query: str = "") -> str:  # type: ignore[no-untyped-def]
    await sign_in(client, "alice@example.com")
    with time_machine.travel(TODAY, tick=False):
        response = await client.get(f"/dashboard{query}")
    assert response.status_code == 200, response.text
    return response.text


async def test_the_dashboard_tables_carry_the_figures_without_javascript(client, alices_month):
    page = await dashboard(client)
    timeline = table(page, "timeline-chart")
    assert len(timeline) == 12, "twelve weeks by default"
    assert timeline[0] == ["31 Aug 2026", "1"], "the week of 3 September, the oldest"
    assert timeline[-2:] == [["9 Nov 2026", "0"], ["16 Nov 2026", "4"]]
    assert "<caption>Wins per week, 31 Aug 2026 to 22 Nov 2026</caption>" in page
    assert table(page, "categories-chart") == [
        ["Uncategorised", "2"],
        ["Work", "2"],
        ["Health", "1"],
    ]
    assert table(page, "mood-chart") == [["16 Nov 2026", "3.67", "3"]]
    assert 'data-axis="16 Nov"' in page, "the chart's axis label, a human date"
    assert page.count('<details class="chart-table mt-2" open>') == 2, "open without a script"


async def test_the_timeline_reaches_back_a_year_or_all_the_way(
    client, session, alice, alices_month
):
    await add(session, alice, "2024-02-10", title="Long ago")
    year = table(await dashboard(client, "?range=1y&by=month"), "timeline-chart")
    assert [row[0] for row in year][:2] == ["December 2025", "January 2026"]
    assert year[-3:] == [["September 2026", "1"], ["October 2026", "0"], ["November 2026", "4"]]
    everything = table(await dashboard(client, "?range=all"), "timeline-chart")
    assert everything[0] == ["February 2024", "1"], "all: months from the first win"
    assert len(everything) == 34 and everything[-1] == ["November 2026", "4"]
    weeks = table(await dashboard(client, "?range=6m"), "timeline-chart")
    assert weeks[0][0] == "1 Jun 2026" and len(weeks) == 25, "June to November"
    days = table(await dashboard(client, "?range=12w&by=day"), "timeline-chart")
    assert days[-1] == ["Sun 22 Nov 2026", "1"] and days[-7] == ["Mon 16 Nov 2026", "2"]


async def test_the_range_links_work_without_a_script(client, alices_month):
    page = await dashboard(client, "?range=6m")
    assert 'href="/dashboard?range=1y#timeline"' in page
    assert 'href="/dashboard?range=6m&amp;by=month#timeline"' in page
    assert re.search(
        r'href="/dashboard\?range=6m#timeline" class="chart-choice" aria-current', page
    )
    assert 'href="/dashboard?year=2025&amp;range=6m&amp;by=week#heat"' in page


@pytest.mark.parametrize("query", ["?range=forever", "?range=", "?by=hour", "?range=12w&by=year"])
async def test_nonsense_dashboard_parameters_are_a_clear_4xx(client, alice, query):
    await sign_in(client, "alice@example.com")
    response = await client.get(f"/dashboard{query}")
    assert response.status_code == 422
    assert response.json()["detail"][0]["msg"]


async def test_the_heatmap_has_labels_a_key_and_a_link_per_day_with_wins(client, alices_month):
    page = await dashboard(client)
    heat = page[page.index('id="heat"') : page.index('id="otd"')]
    assert re.search(r'class="heat-scroll" role="region" tabindex="0" aria-label="[^"]+"', heat)
    for weekday in ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]:
        assert f">{weekday}</text>" in heat
    months = re.findall(r'<text x="\d+" y="12">(\w+)</text>', heat)
    assert months == ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov"]
    assert "Key, wins a day" in heat and "4 or more" in heat
    links = re.findall(
        r'<a href="/entries\?date_from=([\d-]+)&amp;date_to=\1"><title>([^<]+)', heat
    )
    assert links == [
        ("2026-09-03", "Thu 3 Sep 2026: 1 win"),
        ("2026-11-16", "Mon 16 Nov 2026: 2 wins"),
        ("2026-11-20", "Fri 20 Nov 2026: 1 win"),
        ("2026-11-22", "Sun 22 Nov 2026: 1 win"),
    ]
    monday = links[1][0]
    day = await client.get(f"/entries?date_from={monday}&date_to={monday}")  # a day's link
    assert "Shipped it" in day.text and "Reviewed it" in day.text and "Ran 5k" not in day.text
    assert re.search(r'width="24" height="24"', heat), "24 px: a tap target's minimum"
    assert "Mon 23 Nov 2026" not in heat, "the grid ends today: the newest week is its last"
    assert "Lighter squares" not in heat, "the caption holds in the dark theme too"


@pytest.fixture
async def alices_year(session, alice):  # type: ignore[no-untyped-def]
    """300 wins in 2025: one a day from 1 January (a 300-day streak), Work every third day."""
    work = await category_id(session, alice, "Work")
    for i in range(300):
        day = date(2025, 1, 1) + timedelta(days=i)
        entry = Entry(
            user_id=alice.id,
            day=day,
            title=f"Win {i}",
            tags="focus" if i % 2 else "",
            category_id=work if i % 3 == 0 else None,
        )
        session.add(entry)
        await session.flush()
        if i % 2:
            session.add(EntryTag(entry_id=entry.id, tag="focus", user_id=alice.id))
    await session.commit()


async def test_a_year_of_300_wins_is_a_summary_with_the_months_folded(client, alices_year):
    await sign_in(client, "alice@example.com")
    with time_machine.travel(TODAY, tick=False):
        page = (await client.get("/review?period=year&date=2025-06-01")).text
    summary = page[: page.index('id="months-h"')]
    assert re.search(r"<dd[^>]*>300</dd>", summary) and "300 days" in summary, "longest streak"
    assert re.search(r"Work</span></th><td>100</td>", summary)
    assert re.search(r"Uncategorised</span></th><td>200</td>", summary)
    assert re.search(r"January</th><td>31</td>", summary)
    assert re.search(r"October</th><td>27</td>", summary) and "December</th><td>0</td>" in summary
    assert '#focus</a> <span class="hint">(150)</span>' in summary
    assert "Win 0" not in summary, "the list comes after the summary"
    folded = re.findall(r'<details class="review-month card mt-3">', page)
    assert len(folded) == 10 and "<details open" not in page, "ten months, each folded"
    assert re.search(r"January 2025</span><span class=\"hint\">31 wins</span>", page)
    first = re.search(r'<a href="/entries/(\d+)"[^>]*>Win 0</a>', page)
    assert first, "each item links to its win"
    assert (await client.get(f"/entries/{first.group(1)}")).status_code == 200


@pytest.mark.parametrize(
    ("query", "previous"),
    [
        ("period=week", "/review?period=week&amp;date=2026-11-09"),
        ("period=month", "/review?period=month&amp;date=2026-10-01"),
        ("period=year", "/review?period=year&amp;date=2025-01-01"),
    ],
)
async def test_next_is_absent_for_the_current_period(client, alice, query, previous):
    await sign_in(client, "alice@example.com")
    with time_machine.travel(TODAY, tick=False):
        page = (await client.get(f"/review?{query}")).text
    assert f'href="{previous}"' in page
    assert "→</a>" not in page, "no Next into the future"


async def test_next_links_to_a_past_period_and_stops_at_today(client, session, alice):
    alice.timezone = "Pacific/Auckland"  # 23 Nov already there
    await session.commit()
    await sign_in(client, "alice@example.com")
    with time_machine.travel(TODAY, tick=False):
        last_week = (await client.get("/review?period=week&date=2026-11-16")).text
        month = (await client.get("/review?period=month&date=2026-10-05")).text
    assert 'href="/review?period=week&amp;date=2026-11-23"' in last_week, "today in Auckland"
    assert 'href="/review?period=month&amp;date=2026-11-01"' in month and "Nov 2026 →" in month


async def test_new_categories_get_distinct_colours_never_grey(client, session, alice):
    await sign_in(client, "alice@example.com")
    token = client.cookies["csrftoken"]
    headers = {"x-csrftoken": token, "Origin": "http://testserver"}
    made = []
    for name in ["Sport", "Music", "Garden"]:
        response = await client.post("/api/v1/categories", json={"name": name}, headers=headers)
        assert response.status_code == 201, response.text
        made.append(response.json()["colour"])
    # The page's colour input starts at the old grey default: it counts as "no colour chosen".
    response = await post_form(client, "/categories", {"name": "Books", "colour": "#64748b"})
    assert response.status_code == 303
    rows = await categories.list_categories(session=session, user=alice)
    colours = {r.category.name: r.category.colour for r in rows}
    made.append(colours["Books"])
    assert made == categories.PALETTE[6:10], "the least-used colours, in palette order"
    assert len(set(colours.values())) == len(colours) == 10, "every category its own colour"
    assert not set(colours.values()) & categories.GREYS
    chosen = await client.post(
        "/api/v1/categories", json={"name": "Travel", "colour": "#123456"}, headers=headers
    )
    assert chosen.json()["colour"] == "#123456", "a chosen colour is kept"


async def test_past_the_palette_the_least_used_colour_comes_next(session, alice):
    for i in range(len(categories.PALETTE) - 6):
        await categories.create_category(session=session, user=alice, name=f"C{i}")
    extra = await categories.create_category(session=session, user=alice, name="One more")
    assert extra.colour == categories.PALETTE[0], "all used once: the first again"
    await categories.create_category(session=session, user=alice, name="Two", colour="#16a34a")
    again = await categories.create_category(session=session, user=alice, name="Three")
    assert again.colour == categories.PALETTE[2], "Work and Health are used twice now"


async def test_the_dashboards_tables_agree_with_the_one_figure_queries(session, alice):
    for day, mood in [
        ("2026-01-05", 3),
        ("2026-01-06", 4),
        ("2026-03-01", None),
        ("2025-12-31", 5),
    ]:
        await add(session, alice, day, mood=mood)
    alice.week_start = 6
    with time_machine.travel(TODAY, tick=False):
        figures = await stats.overview(session=session, user=alice, year=2026)
        start = timeline_start("all", "week", alice, figures.first_day)
        for period in ("day", "week", "month"):
            kwargs = {"period": period, "date_from": start, "date_to": date(2026, 11, 22)}
            assert stats.timeline_of(figures, user=alice, **kwargs) == await stats.timeline(
                session=session, user=alice, **kwargs
            )
        span = {"date_from": date(2025, 6, 1), "date_to": date(2026, 11, 22)}
        moods = stats.mood_of(figures, user=alice, **span)
        assert moods == await stats.mood_trend(session=session, user=alice, **span)
    assert start == date(2025, 12, 28), "the Sunday starting the first win's week"
    assert [(m.week_start, m.average) for m in moods] == [
        (date(2025, 12, 28), 5.0),
        (date(2026, 1, 4), 3.5),
    ]
