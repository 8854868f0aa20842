"""Work that runs after the answer has gone out (account actions, queuing their mail, noting a
session's use), tracked so shutdown waits. Periodic work is the job queue's (app/jobs.py).

Starlette's BackgroundTasks run inside the response cycle; a detached task makes the
answer's timing independent of the mail for every client and server alike.
"""

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

log = logging.getLogger("app.background")


class Background:
    def __init__(self) -> None:
        self.tasks: set[asyncio.Task[None]] = set()

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self.tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task failed", exc_info=task.exception())

    async def drain(self) -> None:
        """Wait for every task started so far (and those they start)."""
        while self.tasks:
            # asyncio.wait always yields to the loop, so the done callbacks of tasks that have
            # just finished run and empty the set; gather of finished tasks completes eagerly
            # on Python 3.12+ without yielding, and this loop would spin for ever.
            await asyncio.wait(self.tasks)
