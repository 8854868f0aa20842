"""Bulk seeding for the benchmark: a fresh, migrated database with 1,000 users and 100,000 wins.

One heavy user writes three wins a day for ten years (10,950 entries); the other 999 share the
rest over the last two years. Rows go in through the app's own tables with SQLAlchemy Core
executemany (never the ORM one by one), after `alembic upgrade head`, so the full-text index
(SQLite FTS5 triggers, PostgreSQL generated tsvector + GIN) is filled exactly as in production.

Search words are planted at known rates so the three search scenarios differ in selectivity:
COMMON in 80% of all entries, RARE in 1%, HANDFUL in five of the heavy user's entries only.

Money: every heavy-user win carries an amount, in six currencies in turn (one, XOF, without
a rate), their base currency is CHF, and ten years of ECB-like daily rates are stored, so
the money stats convert 10,950 wins through the euro (bench scenario stats-money); the other
users' wins carry 19.99 USD one time in ten.
"""

import random
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import create_engine, insert, text, update
from sqlalchemy.engine import Engine

from app.auth import password_helper
from app.db import sync_url
from app.markdown import render
from app.models import Category, Entry, ExchangeRate, User
from tests.live_server import PASSWORD, migrate

USERS = 1_000
ENTRIES = 100_000
HEAVY_EMAIL = "heavy@bench.example"
HEAVY_YEARS, HEAVY_PER_DAY = 10, 3
COMMON, RARE, HANDFUL = "progress", "marathon", "zeppelin"
TAGS = ["work focus", "health", "learning reading", "family", "side-project"]
CATEGORIES = [("Work", "#2563eb"), ("Health", "#16a34a"), ("Learning", "#9333ea")]
TITLES = [
    "Shipped the release",
    "Closed the Henderson deal",
    "Fixed the flaky build",
    "Gave the team demo",
    "Ran five kilometres",
    "Read two chapters",
    "Cooked dinner for friends",
    "Mentored a new colleague",
]
SENTENCES = [
    "Finished the **quarterly report** a day early and the numbers hold up.",
    "The follow-up call made the difference; they signed before lunch.",
    "Paired on the migration and we found the slow query together.",
    "Kept the evening free and went for a long walk by the river.",
    "Wrote the design note, got two thoughtful reviews, merged it.",
    "Answered every support ticket in the queue before noon.",
]
BATCH = 5_000
MONEY_CURRENCIES = ["USD", "EUR", "GBP", "JPY", "CHF", "XOF"]  # the ECB has no XOF
RATE_BASES = {"USD": 1.08, "GBP": 0.85, "JPY": 160.0, "CHF": 0.95}


@dataclass
class Seeded:
    users: int
    entries: int
    heavy_entries: int
    seconds: float


def fresh_database(url: str) -> None:
    """An empty database at head: PostgreSQL's public schema is dropped first (the URL must
    name a database that may be emptied); a SQLite file is expected not to exist yet."""
    if not url.startswith("sqlite"):
        engine = create_engine(sync_url(url), isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        engine.dispose()
    migrate(url)


def _body(index: int, *, rare: bool, handful: bool) -> str:
    parts = [SENTENCES[index % len(SENTENCES)], SENTENCES[(index * 7 + 3) % len(SENTENCES)]]
    if index % 5:
        parts.append(f"Real {COMMON} on the long project.")
    if rare:
        parts.append(f"Signed up for the city {RARE} in spring.")
    if handful:
        parts.append(f"A {HANDFUL} floated over the office at lunch.")
    return " ".join(parts)


def _entries(user_days: list[tuple[uuid.UUID, list[int], date]], now: datetime) -> Iterator[dict]:
    """Entry rows; bodies repeat, so each distinct one is rendered to HTML once."""
    html: dict[str, str] = {}
    for index, (user_id, category_ids, day) in enumerate(user_days):
        rare = index % 100 == 37
        handful = user_days[0][0] == user_id and index % 2_000 == 1_999
        body = _body(index, rare=rare, handful=handful)
        if body not in html:
            html[body] = render(body)
        heavy = user_days[0][0] == user_id
        money = heavy or index % 10 == 0
        currency = MONEY_CURRENCIES[index % len(MONEY_CURRENCIES)] if heavy else "USD"
        yield {
            "user_id": user_id,
            "category_id": category_ids[index % len(category_ids)] if index % 4 else None,
            "day": day,
            "title": f"{TITLES[index % len(TITLES)]} ({index})",
            "body": body,
            "body_html": html[body],
            "tags": TAGS[index % len(TAGS)],
            "mood": 1 + index % 5,
            "amount_minor": (1_999 + index % 5_000) if money else None,
            "currency": currency if money else None,
            "created_at": now,
            "updated_at": now,
        }


def _batches(rows: Iterator[dict], size: int = BATCH) -> Iterator[list[dict]]:
    batch: list[dict] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _insert_users(engine: Engine, now: datetime) -> list[uuid.UUID]:
    hashed = password_helper.hash(PASSWORD)  # argon2 once: every account shares the password
    ids = [uuid.uuid4() for _ in range(USERS)]
    emails = [HEAVY_EMAIL] + [f"user{i}@bench.example" for i in range(1, USERS)]
    users: list[dict[str, Any]] = [
        {
            "id": user_id,
            "email": email,
            "hashed_password": hashed,
            "is_active": True,
            "is_superuser": False,
            "is_verified": True,
            "created_at": now,
        }
        for user_id, email in zip(ids, emails, strict=True)
    ]
    categories = [
        {"user_id": user_id, "name": name, "colour": colour, "created_at": now}
        for user_id in ids
        for name, colour in CATEGORIES
    ]
    with engine.begin() as conn:
        conn.execute(insert(User), users)
        conn.execute(insert(Category), categories)
    return ids


def _seed_money(conn: Any, heavy: uuid.UUID, today: date) -> None:
    """Business-day rates for ten years and a few weeks (drifting a little each day), and a
    base currency that is neither the euro nor the wins' most common currency."""
    rows = []
    for back in range(HEAVY_YEARS * 366 + 30):
        day = today - timedelta(days=back)
        if day.weekday() < 5:
            drift = 1 + ((back * 7919) % 200 - 100) / 2_000
            rows += [
                {"day": day, "currency": c, "rate": f"{base * drift:.4f}"}
                for c, base in RATE_BASES.items()
            ]
    for batch in _batches(iter(rows)):
        conn.execute(insert(ExchangeRate), batch)
    users = User.__table__
    conn.execute(update(users).where(users.c.id == heavy).values(base_currency="CHF"))


def seed(
    url: str,
    heavy: int = HEAVY_YEARS * 365 * HEAVY_PER_DAY,
    others: int = ENTRIES - HEAVY_YEARS * 365 * HEAVY_PER_DAY,
) -> Seeded:
    """Fill a fresh database (see fresh_database) and return what went in: `heavy` wins for
    the heavy user (HEAVY_PER_DAY a day back from today), `others` shared by the rest."""
    started = time.perf_counter()
    engine = create_engine(sync_url(url))
    now, today = datetime.now(UTC), date.today()
    rng = random.Random(42)
    ids = _insert_users(engine, now)
    with engine.connect() as conn:
        category_rows = conn.execute(text("SELECT user_id, id FROM category")).all()
    by_user: dict[str, list[int]] = {}
    for user_id, category_id in category_rows:
        by_user.setdefault(uuid.UUID(str(user_id)).hex, []).append(category_id)

    def categories_of(user_id: uuid.UUID) -> list[int]:
        return by_user[user_id.hex]

    user_days = [
        (ids[0], categories_of(ids[0]), today - timedelta(days=i // HEAVY_PER_DAY))
        for i in range(heavy)
    ]
    rest = ids[1:]
    for i in range(others):
        user_id = rest[i % len(rest)]
        user_days.append((user_id, categories_of(user_id), today - timedelta(rng.randrange(730))))
    with engine.begin() as conn:
        for batch in _batches(_entries(user_days, now)):
            conn.execute(insert(Entry), batch)
        for tag in sorted({t for pair in TAGS for t in pair.split()}):
            conn.execute(
                text(
                    "INSERT INTO entry_tag (entry_id, tag, user_id) SELECT id, :tag, user_id "
                    "FROM entry WHERE ' ' || tags || ' ' LIKE :pattern"
                ),
                {"tag": tag, "pattern": f"% {tag} %"},
            )
        _seed_money(conn, ids[0], today)
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))  # what autovacuum does soon after a bulk load
    engine.dispose()
    return Seeded(USERS, heavy + others, heavy, time.perf_counter() - started)
