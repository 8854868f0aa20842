"""Writes in one worker take turns on SQLite (app.db._one_writer_at_a_time): a writer waits
for the one before it however long it takes, instead of failing after SQLite's busy timeout."""

import asyncio

import httpx
import pytest
from sqlalchemy import func, select, update

from app.models import Entry, User
from tests.factories import bearer_token

BUSY_TIMEOUT_SECONDS = 5  # app.db.SQLITE_PRAGMAS


@pytest.fixture
async def auth(client: httpx.AsyncClient, alice: User) -> dict[str, str]:
    return {"Authorization": f"Bearer {await bearer_token(client, 'alice@example.com')}"}


async def test_a_writer_waits_its_turn_past_the_busy_timeout(app, settings, client, alice, auth):
    if not settings.is_sqlite:
        pytest.skip("PostgreSQL locks rows, not the database")
    async with app.state.sessionmaker() as holder:
        await holder.execute(update(User).where(User.id == alice.id).values(theme="dark"))
        write = asyncio.create_task(
            client.post("/api/v1/entries", json={"title": "Waited"}, headers=auth)
        )
        await asyncio.sleep(BUSY_TIMEOUT_SECONDS + 1)
        assert not write.done()
        await holder.commit()
    response = await write
    assert response.status_code == 201, response.text


async def test_forty_writes_at_once_are_all_stored(client, session, alice, auth):
    answers = await asyncio.gather(
        *(
            client.post("/api/v1/entries", json={"title": f"Burst {n}"}, headers=auth)
            for n in range(40)
        )
    )
    assert [a.status_code for a in answers] == [201] * 40
    stored = select(func.count()).where(Entry.title.startswith("Burst "))  # type: ignore[attr-defined]
    assert (await session.execute(stored)).scalar_one() == 40
