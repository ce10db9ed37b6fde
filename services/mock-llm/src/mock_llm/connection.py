"""Low-level control of the client connection, for the disconnect and stall faults."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable

import gevent.select

SOCKET_KEY = "mock_llm.socket"
SEND_HEADERS_KEY = "mock_llm.send_headers"  # flushes the status line and headers (server.py)


def send_headers(send: Callable[[], None] | None) -> None:
    """Send the response head now, before any body byte: a stream's headers go out at once, as
    OpenAI and vLLM send them, even when its first body write waits for the first token."""
    if send is not None:
        send()


def drop(sock: socket.socket | None) -> None:
    """Cut the connection mid-response: the client sees the body end without its terminator."""
    if sock is None:
        return
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


def wait_until_client_leaves(sock: socket.socket | None, limit_s: float) -> bool:
    """Send nothing for up to `limit_s`; return True as soon as the client closes its side."""
    deadline = time.monotonic() + limit_s
    while (left := deadline - time.monotonic()) > 0:
        if sock is None:
            time.sleep(min(left, 0.5))
            continue
        try:
            readable, _, _ = gevent.select.select([sock], [], [], min(left, 0.5))
            if readable and sock.recv(1, socket.MSG_PEEK) == b"":
                return True
            if readable:  # the client sent more bytes (pipelining): keep waiting, don't spin
                time.sleep(min(left, 0.5))
        except OSError:
            return True
    return False
