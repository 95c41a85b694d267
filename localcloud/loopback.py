"""A threaded HTTP server on 127.0.0.1 with an OS-chosen port, as a context manager.

Every stand-in serves through this so that tests never pick ports, never bind
beyond loopback, and always stop their server threads on exit.
"""

from __future__ import annotations

import email.parser
import http.client
import re
import socket
import struct
import threading
from http import HTTPStatus
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


# http.client's bounds on a header block (_MAXLINE, _MAXHEADERS).
MAX_HEADER_LINE = 65536
MAX_HEADERS = 100
# A header line the email package's feed parser reads as "name: value" (its headerRE, less
# the "From " and continuation forms, which take the email parser's own path).
_HEADER_LINE = re.compile(rb"[\x21-\x39\x3b-\x7e]+:")
_REQUEST_VERSIONS = ("HTTP/1.0", "HTTP/1.1")


class RequestHandler(BaseHTTPRequestHandler):
    """``BaseHTTPRequestHandler`` that reads a plain header block without the email package.

    ``http.server`` parses every request's headers with ``email.parser``'s feed parser,
    the largest single cost of a stand-in's request here. A request line of
    ``METHOD PATH HTTP/1.0|1.1`` whose every header line is ``name: value`` is read
    into the same ``http.client.HTTPMessage`` directly (the names and values the feed
    parser would store); anything else takes ``http.server``'s own path.
    """

    raw_requestline: bytes  # set by handle_one_request before parse_request (not in typeshed)

    def parse_request(self) -> bool:
        requestline = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n")
        words = requestline.split()
        if len(words) != 3 or words[2] not in _REQUEST_VERSIONS:
            return super().parse_request()  # errors, HTTP/0.9 and other versions, as http.server answers them
        self.requestline = requestline
        self.command, path, self.request_version = words
        # As http.server (gh-87389): a path starting with // is reduced to one /.
        self.path = "/" + path.lstrip("/") if path.startswith("//") else path
        self.close_connection = self.request_version != "HTTP/1.1" or self.protocol_version < "HTTP/1.1"
        try:
            self.headers = self._read_headers()
        except http.client.LineTooLong as err:
            self.send_error(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "Line too long", str(err))
            return False
        except http.client.HTTPException as err:
            self.send_error(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "Too many headers", str(err))
            return False
        connection = self.headers.get("Connection", "").lower()
        if connection == "close":
            self.close_connection = True
        elif connection == "keep-alive" and self.protocol_version >= "HTTP/1.1":
            self.close_connection = False
        expect = self.headers.get("Expect", "")
        if (expect.lower() == "100-continue" and self.protocol_version >= "HTTP/1.1"
                and self.request_version >= "HTTP/1.1"):
            return self.handle_expect_100()
        return True

    def _read_headers(self) -> http.client.HTTPMessage:
        lines: list[bytes] = []
        while True:
            line = self.rfile.readline(MAX_HEADER_LINE + 1)
            if len(line) > MAX_HEADER_LINE:
                raise http.client.LineTooLong("header line")
            lines.append(line)
            if len(lines) > MAX_HEADERS:
                raise http.client.HTTPException(f"got more than {MAX_HEADERS} headers")
            if line in (b"\r\n", b"\n", b""):
                break
        message = self.MessageClass()
        fields = lines[:-1] if lines[-1] in (b"\r\n", b"\n") else lines
        if not all(_HEADER_LINE.match(line) for line in fields):
            return email.parser.Parser(_class=self.MessageClass).parsestr(b"".join(lines).decode("iso-8859-1"))
        for line in fields:
            name, _, value = line.decode("iso-8859-1").partition(":")
            message.set_raw(name, value.lstrip(" \t").rstrip("\r\n"))
        return message


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
