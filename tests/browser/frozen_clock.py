"""A test-only app factory: the app with its clock moved to FROZEN_CLOCK_AT (ISO 8601), ticking.

    uvicorn --factory tests.browser.frozen_clock:create_app
    python -m tests.browser.frozen_clock worker ...   # its job worker, on the same clock

It lives under tests/ (never in the image, never named by any server command), so no
deployment can start with a fake clock; time-machine moves the wall clock only, so the
event loop's monotonic timers are untouched.
"""

import os

import time_machine
from fastapi import FastAPI

from app.main import create_app as create_real_app


def create_app() -> FastAPI:
    time_machine.travel(os.environ["FROZEN_CLOCK_AT"], tick=True).start()
    return create_real_app()


if __name__ == "__main__":  # the worker beside such an app: jobs it queues are not stale
    from app.cli import main

    time_machine.travel(os.environ["FROZEN_CLOCK_AT"], tick=True).start()
    main()
