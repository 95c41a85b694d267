"""The stand-ins' request handler reads headers as http.server does, without the email parser."""

from __future__ import annotations

import email.parser
import http.client
import json
import socket

import pytest

from localcloud.loopback import LoopbackServer, RequestHandler, read_body


class _Echo(RequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        body = read_body(self)
        data = json.dumps({"command": self.command, "path": self.path, "version": self.request_version,
                           "headers": list(self.headers.items()), "close": self.close_connection,
                           "body": body.decode(), "type": type(self.headers).__name__}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST


def _exchange(port: int, raw: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(raw)
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def _answer(raw: bytes) -> tuple[int, bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def _email_headers(block: bytes) -> list[list[str]]:
    message = email.parser.Parser(_class=http.client.HTTPMessage).parsestr(block.decode("iso-8859-1"))
    return [list(item) for item in message.items()]


BLOCKS = [
    b"Host: h\r\nContent-Length: 2\r\n\r\n",
    b"Host: h\r\nX-Mns-A:  spaced value \r\nx-mns-a: again\r\nContent-Length: 2\r\n\r\n",
    b"Host:h\r\nX-Empty:\r\nX-Tab:\tt\r\nContent-Length: 2\r\nConnection: close\r\n\r\n",
    b"Host: h\nContent-Length: 2\n\n",  # bare LF line ends
    b"Host: h\r\nX-Folded: one\r\n two\r\nContent-Length: 2\r\n\r\n",  # a continuation: the email path
    b"Host: h\r\nX-Latin: caf\xe9\r\nContent-Length: 2\r\n\r\n",
]


@pytest.mark.parametrize("block", BLOCKS)
def test_headers_are_what_the_email_parser_reads(block):
    with LoopbackServer(_Echo) as server:
        status, body = _answer(_exchange(server.port, b"POST //a/b?x=1 HTTP/1.1\r\n" + block + b"ok"))
    seen = json.loads(body)
    assert status == 200
    assert seen["headers"] == _email_headers(block)
    assert (seen["command"], seen["path"], seen["version"], seen["body"]) == ("POST", "/a/b?x=1", "HTTP/1.1", "ok")
    assert seen["type"] == "HTTPMessage"
    assert seen["close"] is (b"Connection: close" in block)


def test_http_1_0_closes_and_other_versions_take_http_servers_path():
    with LoopbackServer(_Echo) as server:
        status, body = _answer(_exchange(server.port, b"GET / HTTP/1.0\r\nHost: h\r\n\r\n"))
        assert status == 200 and json.loads(body)["close"] is True
        # http.server answers HTTP/2 before it has a version to answer in: a bare error page.
        assert b"Error code: 505" in _exchange(server.port, b"GET / HTTP/2.0\r\n\r\n")
        assert b"Error code: 400" in _exchange(server.port, b"GET / HTTP/x\r\n\r\n")
        assert _answer(_exchange(server.port, b"POST / extra HTTP/1.1\r\n\r\n"))[0] == 400


def test_too_many_or_too_long_headers_are_refused_as_http_server_refuses_them():
    many = b"".join(b"X-%d: v\r\n" % n for n in range(101))
    long = b"X-Long: " + b"v" * 70000 + b"\r\n"
    with LoopbackServer(_Echo) as server:
        assert _answer(_exchange(server.port, b"GET / HTTP/1.1\r\n" + many + b"\r\n"))[0] == 431
        assert _answer(_exchange(server.port, b"GET / HTTP/1.1\r\n" + long + b"\r\n"))[0] == 431


def test_a_plain_header_block_does_not_go_through_the_email_parser(monkeypatch):
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the email parser was used")

    monkeypatch.setattr(email.parser.Parser, "parsestr", refuse)
    with LoopbackServer(_Echo) as server:
        status, body = _answer(_exchange(server.port, b"POST / HTTP/1.1\r\n" + BLOCKS[1] + b"ok"))
    assert status == 200 and json.loads(body)["headers"][1] == ["X-Mns-A", "spaced value "]
