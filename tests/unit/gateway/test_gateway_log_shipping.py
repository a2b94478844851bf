"""The gateway's log shipper: lines reach the store as JSON lines in batches; a store that hangs
or is gone never holds up or fails the code that logs. The receivers here are plain sockets and a
small HTTP server that stand in for the store (the real store is in tests/integration)."""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from gateway.log_shipping import CONTENT_TYPE, LogStoreHandler


def _logger(handler: logging.Handler, name: str) -> logging.Logger:
    log = logging.getLogger(name)
    log.handlers = [handler]
    log.setLevel(logging.INFO)
    log.propagate = False
    return log


class _Received:
    def __init__(self) -> None:
        self.bodies: list[tuple[str, bytes]] = []
        self.got = threading.Event()
        self.connections = 0


def _serve(received: _Received, keep_alive: bool, close_after: bool = False) -> ThreadingHTTPServer:
    """A stand-in store; `close_after` closes each connection after its answer without saying
    so, as a store does when a kept connection reaches its idle timeout."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1" if keep_alive else "HTTP/1.0"

        def setup(self) -> None:
            super().setup()
            received.connections += 1

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.bodies.append((self.headers["Content-Type"], body))
            received.got.set()
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()
            if close_after:
                self.close_connection = True

        def log_message(self, *args: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _url(server: ThreadingHTTPServer) -> str:
    return f"http://127.0.0.1:{server.server_port}/insert/jsonline"


@pytest.fixture
def fake_store() -> Iterator[tuple[str, _Received]]:
    received = _Received()
    server = _serve(received, keep_alive=False)
    yield _url(server), received
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("close_after", [False, True], ids=["kept", "closed-by-the-store"])
def test_posts_share_one_connection_and_a_closed_one_loses_nothing(close_after: bool) -> None:
    received = _Received()
    server = _serve(received, keep_alive=True, close_after=close_after)
    handler = LogStoreHandler(_url(server), {"layer": "gateway"}, interval_s=0.01)
    log = _logger(handler, f"test.ship.keep.{close_after}")
    try:
        for i in range(3):
            received.got.clear()
            log.info("line", extra={"fields": {"i": i}})
            assert received.got.wait(5), f"post {i} never arrived"
    finally:
        handler.close()
        server.shutdown()
        server.server_close()
    assert len(received.bodies) == 3
    assert handler.sent == 3 and handler.dropped == 0 and handler.failed_posts == 0
    assert received.connections == (3 if close_after else 1)


def test_lines_arrive_as_json_lines_with_time_layer_and_fields(fake_store) -> None:  # type: ignore[no-untyped-def]
    url, received = fake_store
    handler = LogStoreHandler(url, {"layer": "gateway", "replica": "gateway-0"}, interval_s=0.05)
    log = _logger(handler, "test.ship.ok")
    log.info("request", extra={"fields": {"request_id": "r-1", "status": 401, "error": "x"}})
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("unhandled", extra={"fields": {"request_id": "r-2"}})
    handler.close()
    assert received.bodies, "nothing was posted"
    ctype = received.bodies[0][0]
    lines = [json.loads(x) for _, b in received.bodies for x in b.decode().splitlines()]
    assert ctype == CONTENT_TYPE
    assert [x["request_id"] for x in lines] == ["r-1", "r-2"]
    assert lines[0]["layer"] == "gateway" and lines[0]["replica"] == "gateway-0"
    assert lines[0]["status"] == 401 and isinstance(lines[0]["_time"], int)
    assert lines[1]["exception_type"] == "ValueError" and "boom" in lines[1]["exception"]
    assert handler.sent == 2 and handler.dropped == 0


def test_a_store_that_never_answers_does_not_hold_up_logging() -> None:
    """The first post hangs on a socket that accepts and never replies; meanwhile every log
    call returns and its line waits in the queue."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    accepted: list[socket.socket] = []
    in_post = threading.Event()

    def accept() -> None:
        conn, _ = listener.accept()
        accepted.append(conn)
        in_post.set()

    threading.Thread(target=accept, daemon=True).start()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/insert/jsonline"
    handler = LogStoreHandler(url, {"layer": "gateway"}, interval_s=0.01, timeout_s=5)
    log = _logger(handler, "test.ship.hang")
    log.info("first")
    assert in_post.wait(5), "the shipper never posted"
    for i in range(1000):
        log.info("while the store hangs", extra={"fields": {"i": i}})
    assert len(handler._pending) == 1000  # queued, none posted: the post is still hanging
    assert handler.sent == 0
    listener.close()
    for conn in accepted:
        conn.close()
    handler.close()


def test_a_store_that_is_gone_drops_and_counts_lines_never_raises() -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    handler = LogStoreHandler(
        f"http://127.0.0.1:{port}/insert/jsonline", {"layer": "gateway"}, max_pending=50
    )
    log = _logger(handler, "test.ship.gone")
    for i in range(200):
        log.info("line", extra={"fields": {"i": i}})
    handler.close()
    assert handler.sent == 0
    assert handler.dropped == 200  # over the queue's bound, or lost with a refused post
    assert handler.failed_posts >= 1
