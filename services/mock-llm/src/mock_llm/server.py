"""The gevent WSGI server, with TCP_NODELAY and the socket exposed for connection faults."""

from __future__ import annotations

import socket

from gevent.pywsgi import WSGIHandler, WSGIServer

from mock_llm.connection import SEND_HEADERS_KEY, SOCKET_KEY


class MockHandler(WSGIHandler):
    def get_environ(self):
        environ = super().get_environ()
        environ[SOCKET_KEY] = self.socket
        environ[SEND_HEADERS_KEY] = self._send_headers
        return environ

    def _send_headers(self) -> None:
        if not self.headers_sent:
            self.write(b"")  # the head only: pywsgi writes no body chunk for empty data

    def handle_one_response(self):
        try:
            super().handle_one_response()
        finally:  # break the handler -> environ -> bound method cycle
            self.environ.pop(SEND_HEADERS_KEY, None)


class MockServer(WSGIServer):
    """Without TCP_NODELAY, Nagle + delayed ACKs add ~40 ms to TTFT on reused connections."""

    handler_class = MockHandler
    # gevent's default of 128 drops SYNs when hundreds of streams open at once (clients then
    # retry after 1 s, 3 s, 7 s: a multi-second TTFT). The kernel caps it at net.core.somaxconn.
    backlog = 2048

    def __init__(self, *args, tcp_nodelay: bool = True, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.tcp_nodelay = tcp_nodelay

    def handle(self, sock, address):
        if self.tcp_nodelay:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().handle(sock, address)
