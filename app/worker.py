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
"""

from typing import Any

from uvicorn.workers import UvicornWorker


class Worker(UvicornWorker):
    CONFIG_KWARGS: dict[str, Any] = {"loop": "asyncio", "http": "httptools"}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.config.timeout_notify = 0
