"""The gateway's client to the model servers keeps no cookies: it serves every client, so a
cookie set on one answer (a balancer's sticky-session cookie, say) must not ride along on the
next client's request."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from gateway.upstream import make_client


@pytest.fixture
def upstream() -> Iterator[tuple[str, list[str | None]]]:
    """A model server stand-in that sets a cookie on every answer and keeps the Cookie header
    of each request it gets."""
    cookies: list[str | None] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            cookies.append(self.headers.get("Cookie"))
            body = b'{"choices": []}'
            self.send_response(200)
            self.send_header("Set-Cookie", "route=replica-a; Path=/")
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        # By name, not by address: aiohttp's default jar keeps cookies only for host names.
        yield f"http://localhost:{server.server_address[1]}/v1/completions", cookies
    finally:
        server.shutdown()
        server.server_close()


def test_a_cookie_from_one_answer_is_not_sent_with_the_next_request(
    upstream: tuple[str, list[str | None]],
) -> None:
    url, cookies = upstream

    async def two_requests() -> None:
        client = make_client()
        try:
            for user in ("a", "b"):
                resp = await client.post(url, {"prompt": f"user {user}"}, {})
                assert resp.status == 200 and "route=replica-a" in resp.headers["Set-Cookie"]
                await resp.read()
        finally:
            await client.aclose()

    asyncio.run(two_requests())
    assert cookies == [None, None]
