"""A threaded HTTP server on 127.0.0.1 with an OS-chosen port, as a context manager.

Every stand-in serves through this so that tests never pick ports, never bind
beyond loopback, and always stop their server threads on exit.
"""

from __future__ import annotations

import socket
import struct
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # Many concurrent executions connect at once in the fault runs.
    request_queue_size = 128
    # Port 0 would be useless if a stale socket could be reused by a test.
    allow_reuse_address = False
    owner: Any = None

    def get_request(self) -> tuple[socket.socket, Any]:
        # http.server writes the status/headers and the body in two sends; with
        # Nagle's algorithm on, a client's delayed ACK holds the body back ~40 ms.
        # Cloud front ends answer at once, so the stand-ins must too.
        connection, address = super().get_request()
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return connection, address


class LoopbackServer:
    """Serves ``handler_class`` on ``127.0.0.1:port`` (0 = chosen by the OS) in a thread.

    ``handler_class.server.owner`` is this object, so request handlers reach
    the stand-in's state without globals.
    """

    def __init__(self, handler_class: type[BaseHTTPRequestHandler], port: int = 0) -> None:
        self._handler_class = handler_class
        self._requested_port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("server is not running; use it as a context manager or call start()")
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` with no trailing slash."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Self:
        server = _Server(("127.0.0.1", self._requested_port), self._handler_class)
        server.owner = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"{type(self).__name__}:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def reset_connection(handler: BaseHTTPRequestHandler) -> None:
    """Aborts the client's connection with a TCP RST instead of an answer.

    SO_LINGER with a zero timeout makes close() send RST, which clients see as
    "connection reset by peer", the way a dropped gateway connection looks.
    """
    sock = handler.connection
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
    except OSError:
        pass
    handler.close_connection = True


def read_body(handler: BaseHTTPRequestHandler, limit: int = 8 * 1024 * 1024) -> bytes:
    """Reads exactly Content-Length bytes (no chunked uploads: no client here sends them)."""
    raw = handler.headers.get("Content-Length") or "0"
    try:
        length = int(raw)
    except ValueError:
        raise ValueError(f"Content-Length {raw!r} is not a number") from None
    if length < 0 or length > limit:
        raise ValueError(f"Content-Length {length} outside 0..{limit}")
    return handler.rfile.read(length) if length else b""
