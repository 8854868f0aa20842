"""Money in the user's base currency: the ECB's reference rates, conversion and totals.

Rates are how many units of a currency one euro buys on an ECB business day. A win is
converted at the rate of its own day, or of the latest earlier business day (at most
RATE_LOOKBACK back: a weekend or a holiday, never a rate weeks old), through the euro:
amount / rate(currency) * rate(base), in Decimal. A currency with no such rate, and no
manual rate of the user's, is counted apart (`unconverted`), never dropped or taken at 1.
Totals are computed on every request from the wins and the rates, so a new base currency or
new rates change every figure at once.
Rounding happens only when a figure is shown (the API rounds to the base currency's minor
units, the pages format with Babel).

The fetch runs only from `successdiary rates refresh` and the periodic task in the app's
lifespan, never on a page request. A failed fetch keeps the rates stored and says so in
/healthz and the log.
"""

import logging
import re
import xml.etree.ElementTree as ET
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

import httpx
from babel.numbers import get_currency_precision
from sqlalchemy import (
    Select,
    String,
    func,
    literal_column,
    null,
    or_,
    select,
    type_coerce,
    union_all,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.config import Settings
from app.models import Category, Entry, ExchangeRate, ManualRate, User
from app.models.base import utcnow
from app.schemas import CurrencyAmount, MoneyCategory, MoneyPeriod, MoneyStats
from app.services import Problem
from app.services.entries import from_minor
from app.services.stats import Period, as_date, periods, week_start_of

log = logging.getLogger("app.rates")

RATE_LOOKBACK = timedelta(days=7)
STALE_AFTER = timedelta(days=5)  # Friday's rates on a Tuesday after Easter Monday are fine
FETCH_TIMEOUT = httpx.Timeout(20.0, connect=10.0)
MAX_RATES_BYTES = 32 * 1024 * 1024  # the full history is about 6 MB
BATCH = 2000
ONE = Decimal(1)
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_ENCODING = re.compile(r"""^<\?xml[^>]*encoding\s*=\s*["']([^"']*)["']""")


class RatesProblem(Problem):
    """The rates could not be fetched or read; the stored ones are kept."""

    def __init__(self, message: str, field: str = "rates") -> None:
        super().__init__(field, message)


@dataclass
class FetchStatus:
    """What this process's last refresh did (each worker refreshes on its own)."""

    attempted: datetime | None = None
    error: str | None = None


STATUS = FetchStatus()


# --- Reading and storing the ECB's files -------------------------------------------------


def parse_rates(content: bytes) -> list[tuple[date, str, str]]:
    """(day, currency, rate) from an ECB eurofxref file (daily, 90-day or full history).

    The ECB's files are UTF-8 and declare no DTD. A file in another encoding (where a DTD
    could hide from a byte search), or one with a DTD, is refused before parsing, so no
    entity, internal or external, is ever expanded.
    """
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RatesProblem("the rates file is not UTF-8: refused") from exc
    declared = _ENCODING.search(text[:200])
    if "\x00" in text or (declared and declared.group(1).lower() not in ("utf-8", "utf8")):
        raise RatesProblem("the rates file is not UTF-8: refused")
    if "<!DOCTYPE" in text.upper() or "<!ENTITY" in text.upper():
        raise RatesProblem("the rates file declares a DTD or entities: refused")
    try:
        root = ET.fromstring(content)  # noqa: S314 (no DTD, checked above)
    except ET.ParseError as exc:
        raise RatesProblem(f"the rates file is not XML: {exc}") from exc
    rows: list[tuple[date, str, str]] = []
    for day_cube in root.iter():
        if not day_cube.tag.endswith("Cube") or "time" not in day_cube.attrib:
            continue
        try:
            day = date.fromisoformat(day_cube.attrib["time"])
        except ValueError as exc:
            raise RatesProblem(f"bad date {day_cube.attrib['time'][:20]!r}") from exc
        for cube in day_cube:
            currency, rate = cube.attrib.get("currency", ""), cube.attrib.get("rate", "")
            rows.append((day, _checked_currency(currency), _checked_rate(rate)))
    if not rows:
        raise RatesProblem("the rates file holds no rates")
    return rows


def _checked_currency(code: str) -> str:
    if not _CURRENCY.match(code):
        raise RatesProblem(f"bad currency code {code[:10]!r}")
    return code


def _checked_rate(text: str) -> str:
    try:
        rate = Decimal(text)
    except InvalidOperation as exc:
        raise RatesProblem(f"bad rate {text[:20]!r}") from exc
    if not rate.is_finite() or rate <= 0 or len(text) > 32:
        raise RatesProblem(f"bad rate {text[:20]!r}")
    return text


async def fetch(url: str, *, max_bytes: int = MAX_RATES_BYTES) -> bytes:
    """The file at `url` (an operator's setting, never user input), with a timeout and a
    size limit."""
    try:
        async with (
            httpx.AsyncClient(timeout=FETCH_TIMEOUT, follow_redirects=True, max_redirects=3) as c,
            c.stream("GET", url, headers={"Accept": "application/xml"}) as response,
        ):
            if response.status_code != 200:
                raise RatesProblem(f"{url} answered {response.status_code}")
            chunks, size = [], 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > max_bytes:
                    raise RatesProblem(f"{url} sent more than {max_bytes:,} bytes")
                chunks.append(chunk)
    except httpx.HTTPError as exc:
        raise RatesProblem(f"{url}: {type(exc).__name__}: {exc}") from exc
    return b"".join(chunks)


def _upsert(session: AsyncSession, rows: list[dict[str, Any]]) -> Any:
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    stmt = insert(ExchangeRate).values(rows)
    return stmt.on_conflict_do_update(
        index_elements=["day", "currency"], set_={"rate": stmt.excluded.rate}
    )


async def store_rates(*, session: AsyncSession, rows: list[tuple[date, str, str]]) -> int:
    """Insert new rates and correct changed ones; returns how many rows changed.

    Idempotent, so several workers may refresh at once."""
    first, last = min(r[0] for r in rows), max(r[0] for r in rows)
    stmt = select(col(ExchangeRate.day), col(ExchangeRate.currency), col(ExchangeRate.rate)).where(
        col(ExchangeRate.day) >= first, col(ExchangeRate.day) <= last
    )
    known = {(d, c): r for d, c, r in (await session.execute(stmt)).all()}
    changed = [{"day": d, "currency": c, "rate": r} for d, c, r in rows if known.get((d, c)) != r]
    for start in range(0, len(changed), BATCH):
        await session.execute(_upsert(session, changed[start : start + BATCH]))
    await session.commit()
    return len(changed)


def _url_for(settings: Settings, history: str | None) -> str:
    if history == "full":
        return settings.history_rates_url
    if history == "90d":
        return settings.history_rates_url.replace("eurofxref-hist.xml", "eurofxref-hist-90d.xml")
    return settings.rates_url


@dataclass
class Refreshed:
    latest: date
    changed: int


async def refresh(
    *, session: AsyncSession, settings: Settings, history: str | None = None
) -> Refreshed:
    """Fetch the daily file (or the 90-day or full history) and store it.

    On failure the stored rates stay, the error is kept for /healthz and logged, and
    RatesProblem is raised.
    """
    STATUS.attempted = utcnow()
    url = _url_for(settings, history)
    try:
        rows = parse_rates(await fetch(url))
    except RatesProblem as exc:
        STATUS.error = str(exc)[:300]
        log.warning("rates refresh failed, keeping the stored rates: %s", STATUS.error)
        raise
    changed = await store_rates(session=session, rows=rows)
    STATUS.error = None
    latest = max(r[0] for r in rows)
    log.info("rates refreshed from %s: %d rows changed, latest %s", url, changed, latest)
    return Refreshed(latest, changed)


async def latest_rates_date(session: AsyncSession) -> date | None:
    return (await session.execute(select(func.max(col(ExchangeRate.day))))).scalar_one_or_none()


async def refresh_due(*, session: AsyncSession, settings: Settings) -> None:
    """The periodic job's one step: the daily file, or the 90-day history when the stored
    rates are missing or old (a new installation, a server that was off)."""
    latest = await latest_rates_date(session)
    recent = latest is not None and datetime.now(UTC).date() - latest <= STALE_AFTER
    with suppress(RatesProblem):  # logged and shown in /healthz; the next run tries again
        await refresh(session=session, settings=settings, history=None if recent else "90d")


async def health(session: AsyncSession) -> dict[str, Any]:
    """For /healthz: ok (recent rates), stale (old rates, or the last fetch failed), none."""
    latest = await latest_rates_date(session)
    if latest is None:
        status = "none"
    elif STATUS.error or datetime.now(UTC).date() - latest > STALE_AFTER:
        status = "stale"
    else:
        status = "ok"
    return {
        "status": status,
        "date": latest.isoformat() if latest else None,
        "error": STATUS.error,
    }


# --- Manual rates ------------------------------------------------------------------------


async def manual_rates(*, session: AsyncSession, user: User) -> list[ManualRate]:
    stmt = (
        select(ManualRate)
        .where(col(ManualRate.user_id) == user.id)
        .order_by(col(ManualRate.currency))
    )
    return list((await session.execute(stmt)).scalars())


async def set_manual_rate(
    *, session: AsyncSession, user: User, currency: str, rate: Decimal
) -> ManualRate:
    """Currency and rate are checked by the caller (app.schemas.ManualRateWrite)."""
    found = await session.get(ManualRate, (user.id, currency))
    if found is None:
        found = ManualRate(user_id=user.id, currency=currency, rate=str(rate))
        session.add(found)
    else:
        found.rate, found.updated_at = str(rate), utcnow()
    await session.commit()
    await session.refresh(found)
    return found


async def delete_manual_rate(*, session: AsyncSession, user: User, currency: str) -> bool:
    found = await session.get(ManualRate, (user.id, currency))
    if found is None:
        return False
    await session.delete(found)
    await session.commit()
    return True


# --- Conversion and totals ---------------------------------------------------------------


@dataclass
class RateBook:
    """The rates one answer needs: per currency, its ECB days (sorted) and rates."""

    days: dict[str, list[date]] = field(default_factory=dict)
    rates: dict[str, list[Decimal]] = field(default_factory=dict)
    manual: dict[str, Decimal] = field(default_factory=dict)

    def rate(self, currency: str, day: date) -> tuple[Decimal, date | None] | None:
        """Units of `currency` per euro on `day` (ECB, then the user's manual rate)."""
        if currency == "EUR":
            return ONE, None
        days = self.days.get(currency, [])
        i = bisect_right(days, day) - 1
        if i >= 0 and day - days[i] <= RATE_LOOKBACK:
            return self.rates[currency][i], days[i]
        if currency in self.manual:
            return self.manual[currency], None
        return None

    def factor(self, currency: str, base: str, day: date) -> tuple[Decimal, date | None] | None:
        """What one unit of `currency` is worth in `base` on `day`, and the ECB day used."""
        if currency == base:
            return ONE, None
        source, target = self.rate(currency, day), self.rate(base, day)
        if source is None or target is None:
            return None
        used = [d for d in (source[1], target[1]) if d is not None]
        return target[0] / source[0], max(used) if used else None


@dataclass
class _Sum:
    """Running sums for one period, one category, or the whole range (exact Decimals)."""

    total: Decimal = Decimal(0)
    count: int = 0
    rate_date: date | None = None
    amounts: dict[str, list[Any]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))
    unconverted: dict[str, list[Any]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))

    def add(
        self, currency: str, minor: int, n: int, value: Decimal | None, used: date | None
    ) -> None:
        self.count += n
        kept = self.amounts if value is not None else self.unconverted
        kept[currency][0] += minor
        kept[currency][1] += n
        if value is not None:
            self.total += value
        if used is not None and (self.rate_date is None or used > self.rate_date):
            self.rate_date = used


def _listed(sums: dict[str, list[Any]]) -> list[CurrencyAmount]:
    return [
        CurrencyAmount(currency=c, amount=from_minor(m, c) or Decimal(0), count=n)
        for c, (m, n) in sorted(sums.items())
    ]


def _shown(value: Decimal, currency: str) -> Decimal:
    """Rounded to the currency's minor units: the one place a total is rounded."""
    return value.quantize(Decimal(1).scaleb(-get_currency_precision(currency)), ROUND_HALF_EVEN)


def dashboard_range(today: date) -> tuple[date, date]:
    """The dashboard's money: this month and the eleven before it."""
    first = today.replace(day=1)
    year, month = divmod(first.year * 12 + first.month - 1 - 11, 12)
    return date(year, month + 1, 1), today


def _bucket(period: Period, day: date, user: User) -> date:
    if period == "day":
        return day
    if period == "week":
        return week_start_of(day, user.week_start)
    return day.replace(day=1)


def _money_statement(user: User, date_from: date, date_to: date) -> Any:
    """One statement for everything an answer needs (the dashboard's budget is tight):
    the wins' sums per day, category and currency (kind 0), the ECB rates of those
    currencies and the base currency over the range (1), the user's manual rates (2) and
    the latest ECB day stored (3)."""
    nothing = null()
    in_range = [
        col(Entry.user_id) == user.id,
        col(Entry.deleted_at).is_(None),
        col(Entry.amount_minor).is_not(None),
        col(Entry.currency).is_not(None),
        col(Entry.day) >= date_from,
        col(Entry.day) <= date_to,
    ]
    wins: Select[Any] = (
        select(
            literal_column("0"),
            type_coerce(col(Entry.day), String),  # parsed below: SQLAlchemy's parser is slow
            col(Entry.category_id),
            col(Category.name),
            col(Category.colour),
            col(Entry.currency),
            func.sum(col(Entry.amount_minor)),
            func.count(),
            nothing,
        )
        .select_from(Entry)
        .outerjoin(Category, col(Category.id) == col(Entry.category_id))
        .where(*in_range)
        .group_by(
            col(Entry.day),
            col(Entry.category_id),
            col(Category.name),
            col(Category.colour),
            col(Entry.currency),
        )
    )
    used = select(col(Entry.currency)).where(*in_range).distinct().scalar_subquery()
    rates: Select[Any] = select(
        literal_column("1"),
        col(ExchangeRate.day),
        nothing,
        nothing,
        nothing,
        col(ExchangeRate.currency),
        nothing,
        nothing,
        col(ExchangeRate.rate),
    ).where(
        or_(col(ExchangeRate.currency).in_(used), col(ExchangeRate.currency) == user.base_currency),
        col(ExchangeRate.day) >= date_from - RATE_LOOKBACK,
        col(ExchangeRate.day) <= date_to,
    )
    manual: Select[Any] = select(
        literal_column("2"),
        nothing,
        nothing,
        nothing,
        nothing,
        col(ManualRate.currency),
        nothing,
        nothing,
        col(ManualRate.rate),
    ).where(col(ManualRate.user_id) == user.id)
    latest = select(
        literal_column("3"),
        func.max(col(ExchangeRate.day)),
        *([nothing] * 7),
    )
    return union_all(wins, rates, manual, latest)


async def money_stats(
    *, session: AsyncSession, user: User, period: Period, date_from: date, date_to: date
) -> MoneyStats:
    """Money per period and per category, in the user's base currency (see the module)."""
    rows = (await session.execute(_money_statement(user, date_from, date_to))).all()
    wins, found, book, latest = [], [], RateBook(), None
    for kind, day, cid, name, colour, currency, minor, n, rate in rows:
        if kind == 0:
            wins.append((as_date(day), cid, name, colour, currency, minor, n))
        elif kind == 1:
            found.append((currency, as_date(day), Decimal(rate)))
        elif kind == 2:
            book.manual[currency] = Decimal(rate)
        elif day is not None:
            latest = as_date(day)
    for currency, day, rate in sorted(found):
        book.days.setdefault(currency, []).append(day)
        book.rates.setdefault(currency, []).append(rate)
    return _totals(user, period, date_from, date_to, wins, book, latest)


def _totals(
    user: User,
    period: Period,
    date_from: date,
    date_to: date,
    rows: Sequence[Any],
    book: RateBook,
    rates_date: date | None,
) -> MoneyStats:
    base = user.base_currency
    whole = _Sum()
    per_period: dict[date, _Sum] = defaultdict(_Sum)
    per_cell: dict[date, dict[int | None, _Sum]] = defaultdict(lambda: defaultdict(_Sum))
    per_category: dict[int | None, _Sum] = defaultdict(_Sum)
    names: dict[int | None, tuple[str, str]] = {}
    factors: dict[tuple[str, date], tuple[Decimal, date | None] | None] = {}
    # First per (period, category, currency, converted?): a few thousand cells for ten years,
    # however many wins; then each cell is added to its period, category and the whole.
    grouped: dict[tuple[date, int | None, str, bool], list[Any]] = {}
    starts: dict[date, date] = {}
    for day, cid, name, colour, currency, minor, n in rows:
        names[cid] = (name or "Uncategorised", colour or "#94a3b8")
        if (currency, day) not in factors:
            factors[(currency, day)] = book.factor(currency, base, day)
        found = factors[(currency, day)]
        if day not in starts:
            starts[day] = _bucket(period, day, user)
        key = (starts[day], cid, currency, found is not None)
        cell = grouped.get(key)
        if cell is None:
            cell = grouped[key] = [0, 0, Decimal(0), None]
        cell[0] += int(minor)
        cell[1] += n
        if found is not None:
            cell[2] += int(minor) * found[0]  # in minor units of `currency`, scaled below
            if found[1] is not None and (cell[3] is None or found[1] > cell[3]):
                cell[3] = found[1]
    for (start, cid, currency, converted), (minor, n, value, used) in grouped.items():
        worth = value.scaleb(-get_currency_precision(currency)) if converted else None
        for sums in (whole, per_period[start], per_cell[start][cid], per_category[cid]):
            sums.add(currency, minor, n, worth, used)

    def category(cid: int | None, sums: _Sum) -> MoneyCategory:
        name, colour = names[cid]
        return MoneyCategory(
            category_id=cid,
            name=name,
            colour=colour,
            total=_shown(sums.total, base),
            count=sums.count,
            amounts=_listed(sums.amounts),
            unconverted=_listed(sums.unconverted),
        )

    def ordered(cells: dict[int | None, _Sum]) -> list[MoneyCategory]:
        found = sorted(cells.items(), key=lambda c: (-c[1].total, c[0] is None, names[c[0]][0]))
        return [category(cid, sums) for cid, sums in found]

    timeline = []
    for start in periods(period, date_from, date_to, user):
        sums = per_period.get(start, _Sum())
        cells = per_cell.get(start, {})
        timeline.append(
            MoneyPeriod(
                start=start,
                total=_shown(sums.total, base),
                count=sums.count,
                rate_date=sums.rate_date,
                categories=ordered(cells),
                unconverted=_listed(sums.unconverted),
            )
        )
    return MoneyStats(
        base_currency=base,
        period=period,
        date_from=date_from,
        date_to=date_to,
        total=_shown(whole.total, base),
        count=whole.count,
        rate_date=whole.rate_date,
        rates_date=rates_date,
        categories=ordered(per_category),
        unconverted=_listed(whole.unconverted),
        periods=timeline,
    )
