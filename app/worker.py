"""The gunicorn worker: uvicorn's, on asyncio's own event loop rather than uvloop.

uvloop (through libuv, which accepts one connection per loop turn: libuv/libuv#3696) leaves
new connections waiting in the kernel's queue while the loop is busy: with 1,000 connections on
one worker, 700 waited there for the whole 35 s run and some gave up after 30 s, where
asyncio's loop accepted them all at once (bench/README.md). uvloop has also been seen to hand
one request's answer to another under heavy load (MagicStack/uvloop#645), which a private
diary cannot risk. httptools still parses HTTP.

uvicorn tells gunicorn's arbiter it is alive only once `timeout` has passed since it last
did, and checks that once every ten turns of its 0.1 s tick; with 1,000 requests queued a turn
took seconds, the word came after the arbiter's 30 s and it killed a healthy worker (every
connection reset). Here the worker says so at every check.

HTTP is app.protocol's: uvicorn's httptools protocol with a bound on each request's head
(MAX_HEADER_BYTES, else 431) and on the time to send it (HEADER_TIMEOUT_SECONDS, else the
connection closes). No `Server` header: it would only tell a scanner what to try. No
WebSocket: the app has none, and an upgraded connection would leave those bounds behind.

Once the app is loaded the worker freezes what exists for the garbage collector and collects
the young generation less often (see `run`).
"""

import gc
from typing import Any

from uvicorn.workers import UvicornWorker

from app.protocol import HttpProtocol

# Requests waiting on the database (PostgreSQL's session lookup) hold their objects across a
# collection, and CPython counts their release against nothing: with the default 700 the
# young generation was collected every six requests and all 180,000 objects scanned every
# thousand (a 50 ms pause: p95 57 ms, p50 11 ms). Frozen and at 10,000: none in 10,000
# requests at 16 connections; p95 18 ms.
YOUNG_GENERATION = 10_000


class Worker(UvicornWorker):
    CONFIG_KWARGS: dict[str, Any] = {
        "loop": "asyncio",
        "http": HttpProtocol,
        "ws": "none",
        "server_header": False,
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.config.timeout_notify = 0

    def run(self) -> None:
        """The app is loaded: what exists now lives as long as the worker (modules, templates,
        SQLAlchemy's metadata, about 180,000 objects), so the collector stops scanning it."""
        gc.freeze()
        gc.set_threshold(YOUNG_GENERATION, *gc.get_threshold()[1:])
        super().run()
