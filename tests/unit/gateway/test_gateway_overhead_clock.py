"""X-Gateway-Overhead-Ms: the gateway's own time, with the marked model-server waits left out;
Server-Timing: the same own time and the wait, from one clock."""

from __future__ import annotations

import asyncio
import time

from starlette.types import Message, Receive, Scope, Send

from gateway.overhead import HEADER, SERVER_TIMING, OverheadClock, OverheadMiddleware, clock_of
from harness.clients.server_timing import durations

WAIT_S = 0.05


def test_clock_leaves_out_the_marked_waits() -> None:
    clock = OverheadClock(started=100.0)
    clock.waited_s = 0.25
    assert abs(clock.own_s(now=100.4) - 0.15) < 1e-9
    assert clock.own_s(now=100.1) == 0.0  # never negative


def test_clock_of_makes_one_when_no_middleware_ran() -> None:
    scope: Scope = {"type": "http"}
    clock = clock_of(scope)
    assert clock_of(scope) is clock


async def _app_that_waits(scope: Scope, receive: Receive, send: Send) -> None:
    with clock_of(scope).waiting():  # as the pipeline marks a model-server call
        await asyncio.sleep(WAIT_S)
    await send({"type": "http.response.start", "status": 200, "headers": [(b"a", b"b")]})
    await send({"type": "http.response.body", "body": b"ok"})


def test_header_on_every_answer_without_the_wait() -> None:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    t0 = time.perf_counter()
    asyncio.run(OverheadMiddleware(_app_that_waits)({"type": "http"}, receive, send))
    wall_ms = (time.perf_counter() - t0) * 1000
    headers = dict(sent[0]["headers"])
    assert headers[b"a"] == b"b"
    own_ms = float(headers[HEADER])
    # The 50 ms wait is not the gateway's: what is left is the wall time less that wait.
    assert 0 <= own_ms <= wall_ms - WAIT_S * 1000 + 0.5


async def _app_that_answers_at_once(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def _headers_of(app: object) -> dict[bytes, bytes]:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    asyncio.run(OverheadMiddleware(app)({"type": "http"}, receive, send))  # type: ignore[arg-type]
    return dict(sent[0]["headers"])


def test_server_timing_splits_the_gateways_time_from_its_wait_on_the_model_server() -> None:
    t0 = time.perf_counter()
    headers = _headers_of(_app_that_waits)
    wall_ms = (time.perf_counter() - t0) * 1000
    timing = durations(headers[SERVER_TIMING].decode())
    assert set(timing) == {"gw", "upstream"}
    assert timing["gw"] == float(headers[HEADER])  # one figure, two headers
    # The wait itself, within the call's own wall time (a fixed margin failed on a busy machine).
    assert WAIT_S * 1000 <= timing["upstream"] <= wall_ms - timing["gw"] + 0.5


def test_an_answer_without_a_model_server_call_has_no_upstream_entry() -> None:
    timing = durations(_headers_of(_app_that_answers_at_once)[SERVER_TIMING].decode())
    assert list(timing) == ["gw"]
