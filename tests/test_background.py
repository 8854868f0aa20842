"""Work after the answer (app/background.py): shutdown and each test's clean-up wait for it."""

import asyncio

from app.background import Background


class CountedSet(set[asyncio.Task[None]]):
    """The task set, failing a drain that asks whether it is empty again and again without
    letting the loop run (a spin would hang the test instead of failing it)."""

    asked = 0

    def __bool__(self) -> bool:
        self.asked += 1
        assert self.asked < 100, "drain spins without yielding to the event loop"
        return len(self) > 0


async def test_drain_waits_for_every_task_and_the_tasks_they_start():
    background, done = Background(), []

    async def second() -> None:
        await asyncio.sleep(0.02)
        done.append("second")

    async def first() -> None:
        await asyncio.sleep(0.01)
        background.spawn(second())
        done.append("first")

    background.spawn(first())
    await background.drain()
    assert done == ["first", "second"] and not background.tasks


async def test_drain_returns_when_a_task_has_finished_but_its_callback_has_not_run():
    """Python 3.12+ completes gather() of finished tasks without yielding, so a drain that
    gathered would never let the finished task's done callback empty the set."""
    background = Background()
    background.tasks = CountedSet()

    async def quick() -> None:
        return None

    background.spawn(quick())
    await asyncio.sleep(0)  # the task runs to its end; its done callback is only scheduled
    task = next(iter(background.tasks))
    assert task.done() and task in background.tasks
    await asyncio.wait_for(background.drain(), timeout=5)
    assert not background.tasks


async def test_a_failed_task_is_logged_and_does_not_stop_the_drain(caplog):
    background = Background()

    async def broken() -> None:
        raise RuntimeError("mail server on fire")

    background.spawn(broken())
    await background.drain()
    assert not background.tasks
    assert "background task failed" in caplog.text and "mail server on fire" in caplog.text
