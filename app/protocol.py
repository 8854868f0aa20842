"""uvicorn's httptools protocol with a bound on a request's head: its size and its time.

httptools keeps a header's value whole until its line ends, and uvicorn keeps the request
line and every header, with no limit: a 50 MB header was read whole into the worker, eight
unfinished 40 MB ones added 400 MB, and a connection that never finished its head stayed open
for ever (uvicorn's keep-alive timer runs only while a connection is idle, and any byte stops
it). Here:

- the parser is fed at most MAX_HEADER_BYTES (64 kB) of a request's head (request line and
  headers); one byte more and the client gets 431 and the connection is closed, so a worker
  holds at most that much of any head (a pipelined head that starts in the same read as the
  end of the request before it is counted from the next read: one read, 256 kB, more);
- a head must be complete HEADER_TIMEOUT_SECONDS (30 s) after the connection opened or the
  previous answer was sent, or the connection is closed.

Served by gunicorn through app.worker.Worker, and by `uvicorn --http app.protocol:HttpProtocol`
(scripts/run.sh). Only public protocol methods (asyncio's and the parser's callbacks) are
extended; what uvicorn does in them still runs.
"""

import asyncio
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

from app.config import settings

TOO_LARGE = b"Request headers too large: at most %d bytes."
# After a 431 the rest of the head is read and dropped for this long before the connection
# closes: closing a socket with unread data sends a reset, which can destroy the answer before
# the client reads it.
LINGER_SECONDS = 2.0


class HttpProtocol(HttpToolsProtocol):
    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.max_head = settings.max_header_bytes
        self.head_timeout = settings.header_timeout_seconds
        # Bytes of the current head fed to the parser; None while no head is being read
        # (a request's body, or an answer on its way).
        self.head_bytes: int | None = 0
        self.head_timer: asyncio.TimerHandle | None = None
        self.refused = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.refused:
            return  # read and dropped until the connection closes
        while self.head_bytes is not None and data:
            room = self.max_head - self.head_bytes
            if room <= 0:
                self.refuse_head()
                return
            piece, data = data[:room], data[room:]
            self.head_bytes += len(piece)
            super().data_received(piece)
            if self.transport.is_closing():
                return
        if data:
            super().data_received(data)

    def on_headers_complete(self) -> None:
        self.head_bytes = None
        self._cancel_head_timer()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self.head_bytes = 0  # the next byte starts the next request's head

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self.timeout_keep_alive_task is not None:
            self._arm_head_timer()  # idle, waiting for the next request

    def refuse_head(self) -> None:
        """431 and close: the head is over the limit before it ended."""
        self.refused = True
        self.head_bytes = None
        self._cancel_head_timer()
        body = TOO_LARGE % self.max_head
        content = [STATUS_LINE[431]]
        for name, value in self.server_state.default_headers:
            content += [name, b": ", value, b"\r\n"]
        content += [
            b"content-type: text/plain; charset=utf-8\r\n",
            b"content-length: %d\r\n" % len(body),
            b"connection: close\r\n\r\n",
            body,
        ]
        self.transport.write(b"".join(content))
        if self.transport.can_write_eof():
            self.transport.write_eof()
            self.loop.call_later(LINGER_SECONDS, self.transport.close)
        else:
            self.transport.close()

    def _arm_head_timer(self) -> None:
        self._cancel_head_timer()
        self.head_timer = self.loop.call_later(self.head_timeout, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None

    def _head_timed_out(self) -> None:
        self.head_timer = None
        if not self.transport.is_closing():
            self.transport.close()
