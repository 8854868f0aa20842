"""Money in the base currency: ECB rates from a real local HTTP server, totals by hand.

The server serves ECB-format XML with known rates. Alice's base currency is CHF; her wins
are in USD, JPY (on a Saturday: Friday's rate), GBP, EUR, CHF and XOF (no rate).
"""

import asyncio
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import time_machine
from alembic import command
from babel.numbers import format_currency
from sqlalchemy import func, select

from app.config import ROOT
from app.jobs import Jobs
from app.models import Category, ExchangeRate, ManualRate
from app.schemas import EntryCreate
from app.services import entries, money
from tests.conftest import alembic_config, make_settings
from tests.factories import bearer_token, post_form, sign_in

NS = 'xmlns:gesmes="http://www.gesmes.org/xml/2002-08-01" xmlns="http://www.ecb.int/vocabulary/2002-08-01/eurofxref"'


def ecb_xml(days: dict[str, dict[str, str]]) -> bytes:
    cubes = "".join(
        f'<Cube time="{day}">'
        + "".join(f'<Cube currency="{c}" rate="{r}"/>' for c, r in rates.items())
        + "</Cube>"
        for day, rates in days.items()
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><gesmes:Envelope {NS}>'
        "<gesmes:subject>Reference rates</gesmes:subject>"
        "<gesmes:Sender><gesmes:name>European Central Bank</gesmes:name></gesmes:Sender>"
        f"<Cube>{cubes}</Cube></gesmes:Envelope>"
    ).encode()


HISTORY = {
    "2026-03-09": {"USD": "1.0900", "JPY": "161.00", "GBP": "0.84500", "CHF": "0.9550"},
    "2026-03-06": {"USD": "1.1000", "JPY": "162.00", "GBP": "0.85000", "CHF": "0.9600"},
    "2026-03-05": {"USD": "1.0800", "JPY": "160.00", "GBP": "0.84000", "CHF": "0.9500"},
}
DAILY = {"2026-03-10": {"USD": "1.0950", "JPY": "161.50", "GBP": "0.84600", "CHF": "0.9580"}}


@dataclass
class RatesServer:
    """Answers GET /eurofxref/<file> with what `files` holds (a status and a body)."""

    port: int = 0
    files: dict[str, tuple[int, bytes]] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)

    @property
    def daily_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/eurofxref/eurofxref-daily.xml"

    def serve(self, daily: Any = DAILY, history: Any = HISTORY, status: int = 200) -> None:
        def body(files: Any) -> bytes:
            return files if isinstance(files, bytes) else ecb_xml(files)

        self.files = {
            "/eurofxref/eurofxref-daily.xml": (status, body(daily)),
            "/eurofxref/eurofxref-hist.xml": (status, body(history)),
            "/eurofxref/eurofxref-hist-90d.xml": (status, body(history)),
        }


@pytest.fixture(scope="module")
def ecb() -> Iterator[RatesServer]:
    server = RatesServer()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            server.requests.append(self.path)
            status, body = server.files.get(self.path, (404, b"not here"))
            self.send_response(status)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield server
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def rates(ecb: RatesServer, app: Any) -> Iterator[Any]:
    """The app's settings pointed at the local server (full history and daily file)."""
    ecb.serve()
    ecb.requests.clear()
    yield app.state.settings.model_copy(update={"rates_url": ecb.daily_url})
    money.STATUS.error = None


async def refresh(session: Any, settings: Any, history: str | None = "full") -> Any:
    return await money.refresh(session=session, settings=settings, history=history)


async def add(session: Any, user: Any, day: str, amount: str, currency: str, category: str | None):
    category_id = None
    if category:
        category_id = (
            await session.execute(
                select(Category.id).where(Category.user_id == user.id, Category.name == category)
            )
        ).scalar_one()
    await entries.create_entry(
        session=session,
        user=user,
        data=EntryCreate(
            title=f"{amount} {currency}",
            day=date.fromisoformat(day),
            amount=Decimal(amount),
            currency=currency,
            category_id=category_id,
        ),
    )


@pytest.fixture
async def wins(session: Any, alice: Any) -> Any:
    alice.base_currency = "CHF"
    session.add(alice)
    await session.commit()
    await add(session, alice, "2026-03-05", "100.00", "USD", "Work")  # Thursday
    await add(session, alice, "2026-03-07", "10000", "JPY", "Work")  # Saturday: Friday's rate
    await add(session, alice, "2026-03-09", "50.00", "GBP", "Health")
    await add(session, alice, "2026-03-06", "20.00", "EUR", None)
    await add(session, alice, "2026-03-06", "10.00", "CHF", None)
    await add(session, alice, "2026-03-06", "5000", "XOF", None)  # the ECB has no XOF
    return alice


# By hand: amount / rate(currency) * rate(CHF), each on the win's day (Saturday -> Friday).
USD = Decimal("100.00") / Decimal("1.0800") * Decimal("0.9500")  # 87.96296...
JPY = Decimal("10000") / Decimal("162.00") * Decimal("0.9600")  # 59.25925...
GBP = Decimal("50.00") / Decimal("0.84500") * Decimal("0.9550")  # 56.50887...
EUR = Decimal("20.00") * Decimal("0.9600")  # 19.2
CHF = Decimal("10.00")
CENT = Decimal("0.01")


def cents(value: Decimal) -> str:
    return str(value.quantize(CENT))


async def money_json(client: Any, token: str, **params: str) -> dict[str, Any]:
    response = await client.get(
        "/api/v1/stats/money",
        params={"date_from": "2026-03-01", "date_to": "2026-03-31", **params},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200, response.text
    return response.json()


def by_name(categories: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in categories}


async def test_the_ecb_history_is_stored_as_day_currency_rate(session, rates):
    done = await refresh(session, rates)
    assert done.latest == date(2026, 3, 9) and done.changed == 12
    row = await session.get(ExchangeRate, (date(2026, 3, 7 - 1), "JPY"))
    assert row.rate == "162.00"
    assert (await refresh(session, rates)).changed == 0  # idempotent: nothing written again


async def test_totals_in_chf_match_the_ones_computed_by_hand(client, session, wins, rates):
    await refresh(session, rates)
    token = await bearer_token(client, "alice@example.com")
    body = await money_json(client, token, period="month")
    assert body["base_currency"] == "CHF"
    assert body["total"] == cents(USD + JPY + GBP + EUR + CHF) == "232.93"
    assert body["count"] == 6
    assert body["unconverted"] == [{"currency": "XOF", "amount": "5000", "count": 1}]
    assert body["rate_date"] == "2026-03-09" and body["rates_date"] == "2026-03-09"
    cats = by_name(body["categories"])
    assert cats["Work"]["total"] == cents(USD + JPY) == "147.22"
    assert cats["Work"]["amounts"] == [
        {"currency": "JPY", "amount": "10000", "count": 1},
        {"currency": "USD", "amount": "100.00", "count": 1},
    ]
    assert cats["Health"]["total"] == cents(GBP) == "56.51"
    assert cats["Uncategorised"]["total"] == cents(EUR + CHF) == "29.20"
    assert cats["Uncategorised"]["count"] == 3
    assert cats["Uncategorised"]["unconverted"] == body["unconverted"]
    [march] = body["periods"]
    assert march["start"] == "2026-03-01" and march["total"] == "232.93"


async def test_weeks_follow_the_week_start_and_a_weekend_win_uses_fridays_rate(
    client, session, wins, rates
):
    await refresh(session, rates)
    token = await bearer_token(client, "alice@example.com")
    body = await money_json(
        client, token, period="week", date_from="2026-03-02", date_to="2026-03-15"
    )
    first, second = body["periods"]
    assert (first["start"], second["start"]) == ("2026-03-02", "2026-03-09")
    assert first["total"] == cents(USD + JPY + EUR + CHF) == "176.42"
    assert first["rate_date"] == "2026-03-06"
    assert second["total"] == cents(GBP)
    days = await money_json(
        client, token, period="day", date_from="2026-03-07", date_to="2026-03-07"
    )
    [saturday] = days["periods"]
    assert saturday["total"] == cents(JPY) == "59.26" and saturday["rate_date"] == "2026-03-06"


async def test_a_currency_without_any_rate_is_counted_apart_not_at_one(
    client, session, wins, rates
):
    token = await bearer_token(client, "alice@example.com")
    body = await money_json(client, token)  # no rates stored at all yet
    assert body["total"] == "10.00"  # only the CHF win: nothing else is converted at 1
    assert body["rates_date"] is None
    assert {u["currency"] for u in body["unconverted"]} == {"USD", "JPY", "GBP", "EUR", "XOF"}
    assert body["count"] == 6


async def test_a_failed_fetch_keeps_the_old_rates_and_healthz_says_stale(
    client, session, ecb, rates, caplog
):
    await refresh(session, rates)
    ecb.serve(status=500)
    with pytest.raises(money.RatesProblem, match="500"):
        await refresh(session, rates, history=None)
    ecb.serve(daily=b"<not-xml")
    with pytest.raises(money.RatesProblem, match="not XML"):
        await refresh(session, rates, history=None)
    count = (await session.execute(select(func.count()).select_from(ExchangeRate))).scalar_one()
    assert count == 12
    assert "keeping the stored rates" in caplog.text
    health = (await client.get("/healthz")).json()
    assert health["status"] == "ok"
    assert health["rates"]["status"] == "stale" and health["rates"]["date"] == "2026-03-09"
    assert "not XML" in health["rates"]["error"]


async def test_healthz_says_none_before_any_rates_and_ok_after_a_fresh_fetch(
    client, session, ecb, rates
):
    assert (await client.get("/healthz")).json()["rates"] == {
        "status": "none",
        "date": None,
        "error": None,
    }
    ecb.serve(daily={date.today().isoformat(): {"USD": "1.1"}})
    await refresh(session, rates, history=None)
    assert (await client.get("/healthz")).json()["rates"]["status"] == "ok"


async def test_a_file_with_a_dtd_is_refused_and_nothing_is_stored(session, ecb, rates):
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">]>'
        + ecb_xml(DAILY).split(b"?>", 1)[1]
    )
    ecb.serve(daily=bomb)
    with pytest.raises(money.RatesProblem, match="DTD"):
        await refresh(session, rates, history=None)
    assert (await session.execute(select(func.count()).select_from(ExchangeRate))).scalar_one() == 0


@pytest.mark.parametrize(
    "encoded",
    [
        '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE x [<!ENTITY a "b">]><x/>'.encode(
            "utf-16"
        ),
        '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><x/>'.encode("utf-16-le"),
        b'<?xml version="1.0" encoding="latin-1"?><x/>',
    ],
)
def test_a_file_in_another_encoding_is_refused_before_parsing(encoded):
    with pytest.raises(money.RatesProblem, match="not UTF-8"):
        money.parse_rates(encoded)


def test_the_ecb_format_is_read_with_its_namespaces():
    rows = money.parse_rates(ecb_xml(HISTORY))
    assert (date(2026, 3, 6), "GBP", "0.85000") in rows and len(rows) == 12
    with pytest.raises(money.RatesProblem, match="bad rate"):
        money.parse_rates(ecb_xml({"2026-03-06": {"USD": "-1"}}))
    with pytest.raises(money.RatesProblem, match="bad currency"):
        money.parse_rates(ecb_xml({"2026-03-06": {"usd!": "1.1"}}))


async def test_an_oversized_answer_is_cut_off(ecb, rates):
    ecb.serve(daily=b"x" * 5000)
    with pytest.raises(money.RatesProblem, match="more than 1,000 bytes"):
        await money.fetch(ecb.daily_url, max_bytes=1000)


async def test_new_rates_change_the_next_answer(client, session, wins, rates, ecb):
    await refresh(session, rates)
    token = await bearer_token(client, "alice@example.com")
    before = await money_json(client, token)
    assert (await money_json(client, token)) == before
    changed = {**HISTORY, "2026-03-05": {**HISTORY["2026-03-05"], "USD": "1.0000"}}
    ecb.serve(history=changed)
    assert (await refresh(session, rates)).changed == 1
    after = await money_json(client, token)
    usd = Decimal("100.00") / Decimal("1.0000") * Decimal("0.9500")
    assert after["total"] == cents(usd + JPY + GBP + EUR + CHF) != before["total"]


async def test_a_new_base_currency_recomputes_every_figure(client, session, wins, rates):
    await refresh(session, rates)
    token = await bearer_token(client, "alice@example.com")
    auth = {"Authorization": f"Bearer {token}"}
    response = await client.patch(
        "/api/v1/users/me/preferences", json={"base_currency": "USD"}, headers=auth
    )
    assert response.status_code == 200, response.text
    body = await money_json(client, token)
    assert body["base_currency"] == "USD"
    usd_total = (
        Decimal("100.00")
        + Decimal("10000") / Decimal("162.00") * Decimal("1.1000")
        + Decimal("50.00") / Decimal("0.84500") * Decimal("1.0900")
        + Decimal("20.00") * Decimal("1.1000")
        + Decimal("10.00") / Decimal("0.9600") * Decimal("1.1000")
    )
    assert body["total"] == cents(usd_total)


async def test_bad_parameters_get_a_clear_422(client, alice):
    token = await bearer_token(client, "alice@example.com")
    auth = {"Authorization": f"Bearer {token}"}
    response = await client.get("/api/v1/stats/money?period=year", headers=auth)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "period"]
    response = await client.get(
        "/api/v1/stats/money?date_from=2026-03-02&date_to=2026-03-01", headers=auth
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["msg"] == "date_from is after date_to."
    response = await client.get("/api/v1/stats/money?date_from=yesterday", headers=auth)
    assert response.status_code == 422
    response = await client.get(
        "/api/v1/stats/money?date_from=0001-01-01&date_to=0001-01-05", headers=auth
    )
    assert response.status_code == 422
    assert "Use a date between 1900 and 2999" in response.json()["detail"][0]["msg"]
    assert (await client.get("/api/v1/stats/money")).status_code == 401


async def test_a_manual_rate_converts_a_currency_the_ecb_does_not_publish(
    client, session, wins, rates, bob
):
    await refresh(session, rates)
    token = await bearer_token(client, "alice@example.com")
    auth = {"Authorization": f"Bearer {token}"}
    assert (await money_json(client, token))["unconverted"][0]["currency"] == "XOF"
    response = await client.put("/api/v1/rates/manual/xof", json={"rate": "655.957"}, headers=auth)
    assert response.status_code == 200, response.text
    assert response.json()["currency"] == "XOF" and response.json()["rate"] == "655.957"
    body = await money_json(client, token)
    xof = Decimal("5000") / Decimal("655.957") * Decimal("0.9600")  # CHF on Friday the 6th
    assert body["total"] == cents(USD + JPY + GBP + EUR + CHF + xof) and body["unconverted"] == []
    listed = (await client.get("/api/v1/rates/manual", headers=auth)).json()
    assert [r["currency"] for r in listed] == ["XOF"]
    bob_token = await bearer_token(client, "bob@example.com")
    bob_auth = {"Authorization": f"Bearer {bob_token}"}
    assert (await client.get("/api/v1/rates/manual", headers=bob_auth)).json() == []
    assert (await client.delete("/api/v1/rates/manual/XOF", headers=bob_auth)).status_code == 404
    assert (await client.delete("/api/v1/rates/manual/XOF", headers=auth)).status_code == 204
    assert (await money_json(client, token))["unconverted"][0]["currency"] == "XOF"


@pytest.mark.parametrize(
    ("currency", "body", "message"),
    [
        ("XOF", {"rate": "-1"}, "greater than 0"),
        ("XOF", {"rate": "0"}, "greater than 0"),
        ("XOF", {"rate": "lots"}, "decimal"),
        ("XOF", {"rate": "NaN"}, "finite"),
        ("ZZZ", {"rate": "1.5"}, "ISO 4217"),
        ("EUR", {"rate": "1.5"}, "always 1"),
    ],
)
async def test_a_bad_manual_rate_is_refused_and_nothing_is_written(
    client, session, alice, currency, body, message
):
    token = await bearer_token(client, "alice@example.com")
    response = await client.put(
        f"/api/v1/rates/manual/{currency}",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 422
    assert message in str(response.json()["detail"])
    assert (await session.execute(select(func.count()).select_from(ManualRate))).scalar_one() == 0


async def test_the_pages_show_the_apis_figures_in_the_browsers_locale(client, session, wins, rates):
    await refresh(session, rates)
    token = await bearer_token(client, "alice@example.com")
    body = await money_json(client, token)
    await sign_in(client, "alice@example.com")
    headers = {"Accept-Language": "de-CH,de;q=0.9,en;q=0.5"}
    review = await client.get("/review?period=month&date=2026-03-15", headers=headers)
    assert review.status_code == 200
    for category in body["categories"]:
        shown = format_currency(Decimal(category["total"]), "CHF", locale="de_CH")
        assert shown in review.text, shown
    assert format_currency(Decimal(body["total"]), "CHF", locale="de_CH") in review.text
    assert format_currency(5000, "XOF", locale="de_CH") in review.text  # the amount without a rate
    assert "de_CH" in review.text  # says which locale formats the figures


async def test_the_dashboard_card_and_table_match_the_api(client, session, wins, rates):
    await refresh(session, rates)
    token = await bearer_token(client, "alice@example.com")
    body = await money_json(
        client, token, period="month", date_from="2025-04-01", date_to="2026-03-31"
    )
    await sign_in(client, "alice@example.com")
    with time_machine.travel("2026-03-20 12:00:00+00:00", tick=False):
        page = await client.get("/dashboard", headers={"Accept-Language": "fr-FR"})
    assert page.status_code == 200
    assert format_currency(Decimal(body["total"]), "CHF", locale="fr_FR") in page.text
    assert "data-money-chart" in page.text and "/static/js/money" in page.text
    for category in body["categories"]:
        assert format_currency(Decimal(category["total"]), "CHF", locale="fr_FR") in page.text


async def test_the_periodic_refresh_runs_only_when_switched_on(db_url, mailbox, ecb, app):
    """A periodic job of the worker (app/jobs.py): it fetches only with RATES_REFRESH on,
    and then once per RATES_REFRESH_SECONDS however often it is woken."""
    ecb.serve()
    ecb.requests.clear()
    assert not app.state.settings.refresh_rates  # the suite's apps never call out
    off = Jobs(make_settings(db_url, mailbox.port, rates_url=ecb.daily_url))
    await asyncio.to_thread(off.periodic["rates"].call_local)
    assert ecb.requests == []
    settings = make_settings(db_url, mailbox.port, rates_refresh=True, rates_url=ecb.daily_url)
    assert settings.refresh_rates
    on = Jobs(settings)
    try:
        await asyncio.to_thread(on.periodic["rates"].call_local)
        assert ecb.requests and ecb.requests[0].endswith("eurofxref-hist-90d.xml")
        ecb.requests.clear()
        await asyncio.to_thread(on.periodic["rates"].call_local)  # ten minutes later, say
        assert ecb.requests == []
    finally:
        if on.runtime is not None:
            on.runtime.close()


def test_the_cli_refreshes_rates_and_says_when_a_fetch_fails(ecb, tmp_path: Path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.sqlite3'}"
    command.upgrade(alembic_config(url), "head")
    env = {**os.environ, "DATABASE_URL": url, "RATES_URL": ecb.daily_url}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "app", "rates", "refresh", *args],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )

    ecb.serve()
    done = run("--history")
    assert done.returncode == 0, done.stderr
    assert "rates up to 2026-03-09: 12 rows added or changed" in done.stdout
    assert "rates up to 2026-03-10: 4 rows" in run().stdout
    ecb.serve(status=503)
    failed = run()
    assert failed.returncode == 1
    assert "503" in failed.stderr and "the stored rates are kept" in failed.stderr


async def test_manual_rates_are_set_and_removed_on_the_settings_page(client, session, alice):
    await sign_in(client, "alice@example.com")
    response = await post_form(client, "/settings/rates", {"currency": "xof", "rate": "655,957"})
    assert response.status_code == 303 and response.headers["location"] == "/settings#rates"
    page = (await client.get("/settings")).text
    assert "Rate for XOF saved." in page and "655.957" in page
    [row] = (await session.execute(select(ManualRate))).scalars()
    assert (row.currency, row.rate) == ("XOF", "655.957")
    response = await post_form(client, "/settings/rates/delete", {"currency": "XOF"})
    assert response.status_code == 303
    assert (await session.execute(select(func.count()).select_from(ManualRate))).scalar_one() == 0


async def test_a_bad_manual_rate_on_the_settings_page_is_explained_and_not_saved(
    client, session, alice
):
    await sign_in(client, "alice@example.com")
    response = await post_form(client, "/settings/rates", {"currency": "EUR", "rate": "-2"})
    assert response.status_code == 422
    assert "its rate is always 1" in response.text
    assert "above 0, like 655.957" in response.text
    response = await post_form(client, "/settings/rates", {"currency": "ZZZ", "rate": "2"})
    assert response.status_code == 422 and "ISO 4217" in response.text
    assert (await session.execute(select(func.count()).select_from(ManualRate))).scalar_one() == 0


async def test_a_browser_that_changes_its_language_gets_figures_in_the_new_one(
    client, session, wins, rates
):
    await refresh(session, rates)
    await sign_in(client, "alice@example.com")
    url = "/review?period=month&date=2026-03-15"
    german = await client.get(url, headers={"Accept-Language": "de-CH"})
    english = await client.get(url, headers={"Accept-Language": "en-GB"})
    total = Decimal(cents(USD + JPY + GBP + EUR + CHF))
    assert format_currency(total, "CHF", locale="de_CH") in german.text
    assert format_currency(total, "CHF", locale="en_GB") in english.text
    assert format_currency(total, "CHF", locale="de_CH") not in english.text


async def test_a_rate_older_than_a_week_is_not_used(client, session, alice, rates):
    alice.base_currency = "CHF"
    session.add(alice)
    await session.commit()
    await refresh(session, rates)  # the latest rates are of Monday 9 March
    await add(session, alice, "2026-03-16", "100.00", "USD", None)  # a week later: still used
    await add(session, alice, "2026-03-17", "100.00", "USD", None)  # eight days: no rate
    token = await bearer_token(client, "alice@example.com")
    body = await money_json(client, token)
    usd = Decimal("100.00") / Decimal("1.0900") * Decimal("0.9550")
    assert body["total"] == cents(usd)
    assert body["unconverted"] == [{"currency": "USD", "amount": "100.00", "count": 1}]
