"""Reminder and digest preferences (API and settings page), the test digest, and due times."""

from datetime import UTC, date, datetime
from typing import Any

import httpx
from fastapi import FastAPI

from app.models import User
from app.services import habits
from tests.conftest import Mailbox
from tests.factories import bearer_token, post_form, sign_in


async def _headers(client: httpx.AsyncClient, email: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {await bearer_token(client, email)}"}


async def test_preferences_default_to_no_reminder_every_day_and_no_digest(
    client: httpx.AsyncClient, alice: User
) -> None:
    prefs = (await client.get("/api/v1/users/me/preferences", headers=await _headers(client, alice.email))).json()  # fmt: skip
    assert prefs["reminder_time"] is None
    assert prefs["reminder_days"] == [1, 2, 3, 4, 5, 6, 7]
    assert prefs["digest"] == "off"


async def test_patch_sets_and_clears_the_reminder(
    client: httpx.AsyncClient, alice: User, session: Any
) -> None:
    headers = await _headers(client, alice.email)
    answer = await client.patch(
        "/api/v1/users/me/preferences",
        json={"reminder_time": "20:30", "reminder_days": [5, 1, 1], "digest": "weekly"},
        headers=headers,
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["reminder_time"], body["reminder_days"], body["digest"]) == (
        "20:30",
        [1, 5],
        "weekly",
    )
    answer = await client.patch(
        "/api/v1/users/me/preferences", json={"reminder_time": None}, headers=headers
    )
    assert answer.json()["reminder_time"] is None and answer.json()["digest"] == "weekly"


async def test_bad_preferences_are_422_with_a_reason_and_nothing_is_written(
    client: httpx.AsyncClient, alice: User, session: Any
) -> None:
    headers = await _headers(client, alice.email)
    for bad, words in [
        ({"reminder_time": "25:00"}, "HH:MM"),
        ({"reminder_time": "8pm"}, "HH:MM"),
        ({"reminder_days": [0, 3]}, "ISO weekdays"),
        ({"reminder_days": []}, "ISO weekdays"),
        ({"digest": "daily"}, "off"),
        ({"reminder_time": "07:00", "digest": "yearly"}, "off"),
    ]:
        answer = await client.patch("/api/v1/users/me/preferences", json=bad, headers=headers)
        assert answer.status_code == 422, bad
        assert words in answer.text, answer.text
    await session.refresh(alice)
    assert (alice.reminder_time, alice.reminder_days, alice.digest) == (None, "1234567", "off")


async def test_the_settings_page_saves_reminders_and_sends_a_test_digest(
    client: httpx.AsyncClient, alice: User, session: Any, mailbox: Mailbox
) -> None:
    await sign_in(client, alice.email)
    page = await client.get("/settings")
    assert "Reminders are off" in page.text and 'name="reminder_time"' in page.text
    bad = await post_form(client, "/settings/habits", {"reminder_time": "99:99"})
    assert bad.status_code == 422 and "HH:MM" in bad.text
    form = {"reminder_time": "08:15", "reminder_days": ["1", "3"], "digest": "monthly"}
    saved = await post_form(client, "/settings/habits", form)  # type: ignore[arg-type]
    assert saved.status_code == 303
    await session.refresh(alice)
    assert (alice.reminder_time, alice.reminder_days, alice.digest) == ("08:15", "13", "monthly")
    page = await client.get("/settings")
    assert "At 08:15 (UTC) on days without a win" in page.text
    sent = await post_form(client, "/settings/digest/test", {})
    assert sent.status_code == 303
    [mail] = mailbox.to(alice.email)
    assert mail["Subject"].startswith("[Test] Your month in wins")


async def test_the_test_digest_is_202_and_at_most_five_an_hour(
    client: httpx.AsyncClient, alice: User, mailbox: Mailbox, app: FastAPI
) -> None:
    headers = await _headers(client, alice.email)
    for _ in range(habits.TEST_DIGESTS_PER_HOUR):
        answer = await client.post("/api/v1/users/me/digest/test", headers=headers)
        assert answer.status_code == 202
    assert len(mailbox.to(alice.email)) == habits.TEST_DIGESTS_PER_HOUR
    answer = await client.post("/api/v1/users/me/digest/test", headers=headers)
    assert answer.status_code == 429 and "TOO_MANY_TEST_DIGESTS" in answer.text
    unauthenticated = await client.post("/api/v1/users/me/digest/test")
    assert unauthenticated.status_code == 401


def test_digests_are_due_on_the_week_start_or_the_first_in_local_time() -> None:
    user = User(
        email="a@example.com", hashed_password="x", timezone="Asia/Tokyo", week_start=0,
        reminder_time=None, reminder_days="1234567", digest="weekly",
    )  # fmt: skip
    monday_8am_tokyo = datetime(2026, 11, 29, 23, 0, tzinfo=UTC)  # Monday 30th, 08:00 JST
    assert habits.due(user, monday_8am_tokyo) == [("weekly", date(2026, 11, 23))]
    assert habits.due(user, datetime(2026, 11, 29, 21, 0, tzinfo=UTC)) == []  # 06:00 JST
    user.digest = "monthly"
    first = datetime(2026, 11, 30, 23, 0, tzinfo=UTC)  # 1 December, 08:00 JST
    assert habits.due(user, first) == [("monthly", date(2026, 11, 1))]
    assert habits.period_end("monthly", date(2026, 11, 1)) == date(2026, 11, 30)
    assert habits.period_end("monthly", date(2024, 2, 1)) == date(2024, 2, 29)
