"""The gateway's SSE response: it always settles (on_close), stops when the client leaves, and
lets the server's own cancellation through."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from gateway.app import create_app
from gateway.streaming import RAW_SEND, SseResponse
from harness.spec.gateway import GatewayRuntimeConfig


class Client:
    """A client as uvicorn presents it: `receive` answers a disconnect once the response is
    complete or the client has gone."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.raw: list[dict[str, Any]] = []
        self.over = asyncio.Event()

    async def receive(self) -> dict[str, Any]:
        await self.over.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body"):
            self.over.set()

    async def send_raw(self, message: dict[str, Any]) -> None:
        self.raw.append(message)
        await self.send(message)


def respond(client: Client, body: AsyncIterator[bytes], closed: list[str]) -> asyncio.Task[None]:
    async def on_close() -> None:
        await asyncio.sleep(0)  # an await of its own, as the real one has
        closed.append("closed")

    response = SseResponse(body, on_close, {"X-Test": "1"})
    scope = {"type": "http", RAW_SEND: client.send_raw}
    return asyncio.ensure_future(response(scope, client.receive, client.send))


async def _events(n: int) -> AsyncIterator[bytes]:
    for i in range(n):
        yield f"data: {i}\n\n".encode()
        await asyncio.sleep(0)


def test_a_completed_stream_sends_every_event_and_settles_once() -> None:
    async def run() -> tuple[Client, list[str]]:
        client, closed = Client(), []
        await respond(client, _events(3), closed)
        await asyncio.sleep(0.01)  # the disconnect that follows completion changes nothing
        return client, closed

    client, closed = asyncio.run(run())
    start, *bodies = client.sent
    assert start["type"] == "http.response.start" and (b"x-test", b"1") in start["headers"]
    assert (b"content-type", b"text/event-stream; charset=utf-8") in start["headers"]
    assert [m["body"] for m in bodies] == [b"data: 0\n\n", b"data: 1\n\n", b"data: 2\n\n", b""]
    assert client.raw == bodies  # the events skip the middlewares' wrappers
    assert closed == ["closed"]


def test_a_client_that_leaves_stops_the_stream_and_it_still_settles() -> None:
    async def run() -> tuple[Client, list[str], bool]:
        client, closed = Client(), []
        upstream_waiting = asyncio.Event()
        cancelled: list[bool] = []

        async def stalled() -> AsyncIterator[bytes]:
            yield b"data: first\n\n"
            upstream_waiting.set()
            try:
                await asyncio.sleep(3600)  # a model server that went quiet
            except asyncio.CancelledError:
                cancelled.append(True)
                raise
            yield b"never"

        task = respond(client, stalled(), closed)
        await upstream_waiting.wait()
        client.over.set()  # the client hangs up
        await asyncio.wait_for(task, 1.0)  # ends as an ordinary response, no exception
        return client, closed, bool(cancelled)

    client, closed, cancelled = asyncio.run(run())
    assert [m.get("body") for m in client.sent[1:]] == [b"data: first\n\n"]
    assert cancelled and closed == ["closed"]


def test_the_servers_own_cancellation_goes_through_and_it_still_settles() -> None:
    async def run() -> list[str]:
        client, closed = Client(), []

        async def forever() -> AsyncIterator[bytes]:
            while True:
                yield b"data: x\n\n"
                await asyncio.sleep(0.001)

        task = respond(client, forever(), closed)
        await asyncio.sleep(0.01)
        task.cancel()  # shutdown
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0.01)
        return closed

    assert asyncio.run(run()) == ["closed"]


def test_the_app_keeps_the_servers_own_send_for_the_events() -> None:
    app = create_app(GatewayRuntimeConfig(replica="gw-test", primary_urls=("http://127.0.0.1:9",)))
    scope: dict[str, Any] = {
        **{"type": "http", "method": "GET", "path": "/healthz", "raw_path": b"/healthz"},
        **{"query_string": b"", "headers": [], "scheme": "http", "root_path": ""},
        **{"client": ("127.0.0.1", 1), "server": ("127.0.0.1", 2), "http_version": "1.1"},
    }
    client = Client()
    asyncio.run(app(scope, client.receive, client.send))
    assert scope[RAW_SEND] == client.send  # the middlewares' wrappers see the start alone
    assert client.sent[0]["status"] == 200
