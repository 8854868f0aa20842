"""The hot pages' query budget: the entry list, a search and the dashboard each run at most
three SQL statements (the session lookup included), and the list and search queries use
their indexes instead of scanning the entry table."""

from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event

from app.db import sync_engine
from app.models import User
from app.schemas import EntryCreate
from app.services import categories, entries, stats
from tests.conftest import settle
from tests.factories import make_entry

BUDGET = 3


class Statements(list[tuple[str, Any]]):
    """Every SQL statement the app sends while recording, with its parameters."""

    def matching(self, *needles: str) -> tuple[str, Any]:
        found = [s for s in self if all(n in s[0] for n in needles)]
        assert len(found) == 1, f"expected one statement with {needles}, got {self}"
        return found[0]


@pytest.fixture
def statements(app: FastAPI) -> Iterator[Statements]:
    recorded = Statements()

    def record(conn: Any, cursor: Any, sql: str, params: Any, context: Any, many: bool) -> None:
        recorded.append((sql, params))

    engines = {sync_engine(app.state.engine), sync_engine(app.state.read_engine)}
    for engine in engines:
        event.listen(engine, "before_cursor_execute", record)
    yield recorded
    for engine in engines:
        event.remove(engine, "before_cursor_execute", record)


@pytest.fixture
async def alice_with_wins(
    app: FastAPI, alice_client: httpx.AsyncClient, alice: User, session: Any
) -> httpx.AsyncClient:
    for i in range(30):
        day = date(2026, 3, 1) + timedelta(days=i)
        await make_entry(
            session,
            alice,
            title=f"Shipped release {i}",
            body=f"Ran {i} km #run and wrote the notes",
            day=day,
            mood=1 + i % 5,
        )
    await settle(app)  # the sign-in's own writes (audit trail) are not the page's
    return alice_client


async def get_counted(client: httpx.AsyncClient, statements: Statements, url: str) -> str:
    statements.clear()
    response = await client.get(url)
    assert response.status_code == 200, response.text
    return response.text


async def test_the_list_page_runs_at_most_three_statements(alice_with_wins, statements):
    page = await get_counted(alice_with_wins, statements, "/entries")
    assert "Shipped release 29" in page
    assert len(statements) <= BUDGET, [s for s, _ in statements]


async def test_a_search_runs_at_most_four_statements(app, alice_with_wins, statements):
    """The lookup, the ranked window with its count, the page's rows with their highlights,
    the filter's categories; SQLite one more: the last word's prefix expanded to the index's
    terms (entry_fts_terms)."""
    page = await get_counted(alice_with_wins, statements, "/entries?q=release+notes")
    assert "<mark>release</mark>" in page.lower()
    extra = app.state.engine.dialect.name == "sqlite"
    assert len(statements) <= BUDGET + 1 + extra, [s for s, _ in statements]


async def test_the_dashboard_runs_at_most_four_statements(alice_with_wins, statements):
    """Three, plus the money card's one statement (wins' amounts, their rates and the
    latest rates day in one UNION ALL: app.services.money)."""
    page = await get_counted(alice_with_wins, statements, "/dashboard")
    assert "Wins in total" in page
    assert len(statements) <= BUDGET + 1, [s for s, _ in statements]


async def test_a_signed_out_visit_costs_no_statement(client, statements):
    statements.clear()
    response = await client.get("/entries")
    assert response.status_code == 303
    assert statements == []


async def query_plan(app: FastAPI, sql: str, params: Any) -> str:
    """The database's plan for a statement the app sent; on PostgreSQL without seq scans, so
    a few test rows do not make a full scan look cheaper than the index."""

    def plan(session: Any) -> str:
        conn = session.connection()
        if conn.dialect.name == "sqlite":
            rows = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", params)
            return "\n".join(str(row[-1]) for row in rows)
        conn.exec_driver_sql("SET enable_seqscan = off")
        rows = conn.exec_driver_sql(f"EXPLAIN {sql}", params)
        return "\n".join(str(row[0]) for row in rows)

    async with app.state.sessionmaker() as session:
        return await session.run_sync(plan)


async def test_the_list_query_reads_the_user_day_index(app, alice_with_wins, statements):
    await get_counted(alice_with_wins, statements, "/entries")
    sql, params = statements.matching("FROM entry", "ORDER BY entry.day DESC")
    plan = await query_plan(app, sql, params)
    assert "ix_entry_user_day" in plan, plan
    assert "SCAN entry\n" not in plan + "\n" and "Seq Scan on entry" not in plan, plan


async def test_the_search_query_reads_the_full_text_index(app, alice_with_wins, statements):
    await get_counted(alice_with_wins, statements, "/entries?q=release")
    if app.state.engine.dialect.name == "sqlite":
        sql, params = statements.matching("entry_fts MATCH", "bm25")
        plan = await query_plan(app, sql, params)
        assert "VIRTUAL TABLE INDEX" in plan and "entry_fts" in plan, plan
    else:
        sql, params = statements.matching("@@", "ts_rank")
        plan = await query_plan(app, sql, params)
        assert "ix_entry_search" in plan or "ix_entry_user_day" in plan, plan
    assert "SCAN entry\n" not in plan + "\n" and "Seq Scan on entry" not in plan, plan


async def test_the_dashboard_figures_agree_with_the_one_figure_queries(alice, session):
    mine = [c.category.id for c in await categories.list_categories(session=session, user=alice)]
    today = entries.today_for(alice)
    days = [today, today, today - timedelta(days=1), today - timedelta(days=9), date(2025, 7, 4)]
    for day, category in zip(days, [mine[0], mine[1], None, mine[0], mine[2]], strict=True):
        data = EntryCreate(title="A win", day=day, category_id=category)
        await entries.create_entry(session=session, user=alice, data=data)
    figures = await stats.overview(session=session, user=alice, year=today.year)
    assert figures.summary == await stats.summary(session=session, user=alice)
    assert figures.summary.total == 5
    assert figures.streaks == await stats.streaks(session=session, user=alice)
    assert figures.streaks.current == 2
    assert figures.categories == await stats.by_category(session=session, user=alice)
    assert figures.heatmap == await stats.heatmap(session=session, user=alice, year=today.year)
