"""The gunicorn worker: uvicorn's, on asyncio's own event loop rather than uvloop.

uvloop (through libuv, which accepts one connection per loop turn: libuv/libuv#3696) leaves
new connections waiting in the kernel's queue while the loop is busy: with 1,000 connections on
one worker, 700 waited there for the whole 35 s run and some gave up after 30 s, where
asyncio's loop accepted them all at once (bench/README.md). uvloop has also been seen to hand
one request's answer to another under heavy load (MagicStack/uvloop#645), which a private
diary cannot risk. httptools still parses HTTP.
"""

from typing import Any

from uvicorn.workers import UvicornWorker


class Worker(UvicornWorker):
    CONFIG_KWARGS: dict[str, Any] = {"loop": "asyncio", "http": "httptools"}
