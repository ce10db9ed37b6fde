"""WSGI entry point for gunicorn (`assistant.wsgi:app`), imported in each worker after fork."""

from __future__ import annotations

import contextlib
import socket
import struct

from assistant.app import create_app

_LINGER_RESET = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends RST, drops the buffers


class ClientWriteTimeout:
    """WSGI middleware: a client that stops reading is dropped after `timeout_s` without progress.

    gunicorn's gthread worker writes the response with a blocking `sendall` and has no write
    timeout: a client that keeps its connection open but stops reading holds a worker thread in
    `send()` once the answer exceeds the socket buffers, for as long as it stays connected;
    enough of them and every thread is stuck (see tests/reliability/test_slow_clients.py).

    When the response starts (the request has been read by then) the client socket gets a
    timeout, so a write that cannot hand one piece of the body (an SSE event) to the kernel
    within `timeout_s` raises `TimeoutError` in gunicorn, which then closes the response
    iterable: the chat stream closes its upstream call and ends its span with
    `error.type=client_disconnected`. A response abandoned like that (closed while the server
    had not finished pulling it: write timeout, reset or closed peer) is then aborted: RST on
    close and no lingering read. gunicorn 27 closes connections "gracefully" on its main
    thread, waiting up to 2 s for the peer's EOF, which a stalled client never sends: that
    would stall accepting new connections for 2 s per dropped client.

    Only the writes are bounded (not the time between LLM chunks, when nothing is written, nor
    reading the request). File responses keep gunicorn's sendfile path (timeout only).
    """

    def __init__(self, wsgi_app, timeout_s: float) -> None:
        self.wsgi_app = wsgi_app
        self.timeout_s = timeout_s

    def __call__(self, environ, start_response):
        sock = environ.get("gunicorn.socket")
        # one socket per HTTP/1.x connection (an HTTP/2 socket is shared by its streams)
        if sock is None or not str(environ.get("SERVER_PROTOCOL", "")).startswith("HTTP/1"):
            return self.wsgi_app(environ, start_response)

        def start_with_write_timeout(status, headers, exc_info=None):
            with contextlib.suppress(OSError, AttributeError):
                sock.settimeout(self.timeout_s)
            return start_response(status, headers, exc_info)

        body = self.wsgi_app(environ, start_with_write_timeout)
        file_wrapper = environ.get("wsgi.file_wrapper")
        if isinstance(file_wrapper, type) and isinstance(body, file_wrapper):
            return body
        return _AbortWhenAbandoned(body, sock)


class _AbortWhenAbandoned:
    """The response iterable, aborting the connection if the server closes it mid-body."""

    __slots__ = ("_body", "_iterator", "_sock", "_suspended")

    def __init__(self, body, sock) -> None:
        self._body = body
        self._iterator = iter(body)
        self._sock = sock
        self._suspended = False  # a piece was handed out and the server has not asked for more

    def __iter__(self):
        return self

    def __next__(self):
        self._suspended = False
        item = next(self._iterator)  # StopIteration and app errors leave _suspended False
        self._suspended = True
        return item

    def close(self) -> None:
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()  # the chat stream's GeneratorExit, the server span's end
        finally:
            if self._suspended:  # the write of the last piece failed: the client is gone
                with contextlib.suppress(OSError):
                    self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
                with contextlib.suppress(OSError):
                    self._sock.shutdown(socket.SHUT_RDWR)


app = create_app()
app.wsgi_app = ClientWriteTimeout(
    app.wsgi_app, app.extensions["assistant"].config.client_write_timeout_s
)
