"""The dashboard and review pages: alice's figures, a friendly empty state, bob sees none."""

import re

import pytest
import time_machine

from tests.factories import make_entry, sign_in


async def add(session, user, day: str, **extra):  # type: ignore[no-untyped-def]
    return await make_entry(session, user, day=day, **extra)


@pytest.mark.parametrize("path", ["/dashboard", "/review"])
async def test_insight_pages_need_a_session(client, path):
    response = await client.get(path)
    assert response.status_code == 303 and response.headers["location"] == f"/login?next={path}"


async def test_an_empty_account_gets_first_steps_not_empty_axes(client, alice):
    await sign_in(client, "alice@example.com")
    page = await client.get("/dashboard")
    assert "Your dashboard fills up as you write" in page.text
    assert "<canvas" not in page.text


async def test_the_dashboard_shows_figures_streaks_heatmap_and_on_this_day(client, session, alice):
    for day in ["2025-11-22", "2026-11-20", "2026-11-21", "2026-11-22"]:
        await add(session, alice, day, title=f"Win on {day}")
    await sign_in(client, "alice@example.com")
    with time_machine.travel("2026-11-22 12:00:00+00:00", tick=False):
        page = (await client.get("/dashboard")).text
    assert "Current streak: 3 days" in page and "Longest streak: 3 days" in page
    assert 'data-chart="timeline"' in page
    assert re.search(r'data-chartjs="/static/vendor/chart\.umd\.min\.[0-9a-f]{12}\.js"', page)
    assert "3 wins on 3 days of 2026." in page, "the heatmap's text alternative"
    assert "Sun 22 Nov 2026: 1 win" in page
    assert "Win on 2025-11-22" in page, "on this day, one year ago"


async def test_bob_sees_none_of_alices_figures_on_his_pages(client, session, alice, bob):
    await add(session, alice, "2026-11-20", title="Alice's private win")
    await sign_in(client, "bob@example.com")
    dashboard = (await client.get("/dashboard")).text
    review = (await client.get("/review?period=year&date=2026-01-01")).text
    assert "Your dashboard fills up as you write" in dashboard
    assert "Alice's private win" not in review and "No wins in this year." in review


async def test_the_review_groups_wins_by_category_and_navigates(client, session, alice):
    from app.services import categories

    rows = await categories.list_categories(session=session, user=alice)
    work = next(r.category.id for r in rows if r.category.name == "Work")
    await add(
        session,
        alice,
        "2026-03-02",
        title="Closed a deal",
        category_id=work,
        mood=4,
        tags=["sales"],
    )
    await add(session, alice, "2026-03-09", title="Ran 10k", mood=2)
    await sign_in(client, "alice@example.com")
    page = (await client.get("/review?period=month&date=2026-03-15")).text
    assert "March 2026" in page and "Closed a deal" in page and "Ran 10k" in page
    sections = {s.split("</h2>")[0]: s for s in page.split('class="review-group')[1:]}
    work = next(s for h, s in sections.items() if "Work" in h)
    other = next(s for h, s in sections.items() if "Uncategorised" in h)
    assert "Closed a deal" in work and "Ran 10k" not in work and "Ran 10k" in other
    assert "#sales" in page and "3.0" in page
    assert 'href="/review?period=month&amp;date=2026-02-01"' in page
    assert 'href="/review?period=month&amp;date=2026-04-01"' in page
    week = (await client.get("/review?period=week&date=2026-03-04")).text
    assert "2 Mar \u2013 8 Mar 2026" in week and "Ran 10k" not in week


async def test_a_bad_review_period_is_a_clear_error(client, alice):
    await sign_in(client, "alice@example.com")
    response = await client.get("/review?period=decade")
    assert response.status_code == 422
