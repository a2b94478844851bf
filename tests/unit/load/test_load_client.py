"""The instrumented client against a scripted server (a fake on purpose: it controls exactly when
each byte is sent, which no real server does). Timing checks here are about measurement
correctness (what the client stamps vs. when the server wrote), with tolerance for a busy box."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import gevent
import pytest
from gevent.server import StreamServer

from harness.load.client import LLMClient
from harness.load.workload import WorkloadGenerator
from harness.spec.load import Workload

# A script is a list of (delay_s, bytes) steps written after the request arrives; None closes.
Script = list[tuple[float, bytes | None]]


def sse(
    content: str | None = None,
    role: bool = False,
    finish: str | None = None,
    usage: int | None = None,
) -> bytes:
    delta: dict[str, str] = {"role": "assistant"} if role else {}
    if content is not None:
        delta["content"] = content
    choices = [] if usage is not None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    obj = {
        "choices": choices,
        "usage": {"completion_tokens": usage, "prompt_tokens": 4} if usage else None,
    }
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


def chunked(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


SSE_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n"
    b"X-Cache: miss\r\nX-Served-By: primary\r\nX-Request-Id: srv-1\r\n\r\n"
)
END = b"0\r\n\r\n"
DONE = chunked(b"data: [DONE]\n\n")


@dataclass
class Scripted:
    url: str
    scripts: list[Script]
    connections: int = 0
    requests: list[bytes] = field(default_factory=list)
    # When each write of the last script went out, in ms after its request was read: on a busy
    # machine a sleep overshoots, and the client must stamp the bytes when they really came.
    sent_ms: list[float] = field(default_factory=list)


def _read_request(sock: socket.socket) -> bytes | None:
    data = b""
    while b"\r\n\r\n" not in data:
        part = sock.recv(65536)
        if not part:
            return None
        data += part
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        (
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length")
        ),
        0,
    )
    while len(body) < length:
        body += sock.recv(65536)
    return head


@pytest.fixture
def scripted() -> Iterator[Callable[[list[Script]], Scripted]]:
    servers: list[StreamServer] = []

    def start(scripts: list[Script]) -> Scripted:
        state = Scripted("", list(scripts))

        def handle(sock: socket.socket, _addr: object) -> None:
            state.connections += 1
            while state.scripts:
                head = _read_request(sock)
                if head is None:
                    return
                state.requests.append(head)
                t0 = time.monotonic()
                state.sent_ms = []
                for delay, data in state.scripts.pop(0):
                    gevent.sleep(delay)
                    if data is None:
                        sock.close()
                        return
                    state.sent_ms.append((time.monotonic() - t0) * 1000)
                    sock.sendall(data)

        server = StreamServer(("127.0.0.1", 0), handle)
        server.start()
        servers.append(server)
        state.url = f"http://127.0.0.1:{server.server_port}"
        return state

    yield start
    for s in servers:
        s.stop(timeout=1)


def plan(stream: bool = True):  # type: ignore[no-untyped-def]
    return WorkloadGenerator(Workload(stream=stream), "m", "sk-x", seed=1, worker=0).next()


# The tests that compare the client's stamps with the server's at a tolerance of tens of ms run
# in the serial phase: a starved process (nice 19 beside the gate) read a byte 50 ms late once.
STAMPS_COMPARED = pytest.mark.serial


def near(value: float | None, expected: float, tol: float = 40.0) -> bool:
    return value is not None and expected - 5 <= value <= expected + tol


@STAMPS_COMPARED
def test_scripted_stream_timings_are_stamped_when_bytes_arrive(scripted) -> None:  # type: ignore[no-untyped-def]
    srv = scripted(
        [
            [
                (0.0, SSE_HEAD + chunked(sse(role=True))),
                (0.15, chunked(sse("a"))),
                (0.05, chunked(sse("b"))),
                (0.10, chunked(sse("c", finish="length")) + chunked(sse(usage=3)) + DONE + END),
            ]
        ]
    )
    s = LLMClient(srv.url, run_tag="t", worker=2).execute(plan(), intended_s=None)
    assert s.ok, s
    head, a, b, c = srv.sent_ms  # about 0, 150, 200 and 300 ms after the server read the request
    # The client's clock starts before it connects, the server's once it has read the request:
    # the stamps are compared from the first byte on, where both see the same writes.
    assert s.status == 200 and s.ttfb_ms is not None and s.ttfb_ms >= 0
    assert s.ttft_ms is not None and near(s.ttft_ms - s.ttfb_ms, a - head)
    assert len(s.token_gaps_ms) == 2 and near(s.token_gaps_ms[0], b - a)
    assert near(s.token_gaps_ms[1], c - b) and near(s.itl_ms, (c - a) / 2)
    assert s.e2e_ms is not None and near(s.e2e_ms - s.ttfb_ms, c - head)
    assert s.output_tokens == 3 and s.output_chunks == 3 and s.prompt_tokens == 4
    assert (s.x_cache, s.x_served_by, s.x_request_id) == ("miss", "primary", "srv-1")
    assert s.client_request_id == "t-2-0" and b"X-Request-Id: t-2-0" in srv.requests[0]
    assert b"Authorization: Bearer sk-x" in srv.requests[0]


@STAMPS_COMPARED
def test_scripted_event_split_across_writes_counts_when_it_completes(scripted) -> None:  # type: ignore[no-untyped-def]
    event = sse("a")
    srv = scripted(
        [
            [
                (0.0, SSE_HEAD + chunked(event[:20])),
                (0.2, chunked(event[20:]) + chunked(sse(finish="stop")) + DONE + END),
            ]
        ]
    )
    s = LLMClient(srv.url).execute(plan())
    assert s.ok and s.ttft_ms is not None and s.ttfb_ms is not None
    assert near(s.ttft_ms - s.ttfb_ms, srv.sent_ms[1] - srv.sent_ms[0])
    assert s.output_tokens is None and s.tokens == 1


def test_http_error_status_is_recorded_with_body(scripted) -> None:  # type: ignore[no-untyped-def]
    body = b'{"error": "rate limited"}'
    srv = scripted(
        [
            [
                (
                    0.0,
                    b"HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\n"
                    + f"Content-Length: {len(body)}\r\n\r\n".encode()
                    + body,
                )
            ]
        ]
    )
    s = LLMClient(srv.url).execute(plan())
    assert s.error == "http" and s.status == 429 and "rate limited" in (s.error_detail or "")
    assert s.ttft_ms is None


def test_connection_refused_is_a_connect_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    s = LLMClient(f"http://127.0.0.1:{port}").execute(plan())
    assert s.error == "connect" and s.status == 0


def test_scripted_silence_times_out(scripted) -> None:  # type: ignore[no-untyped-def]
    srv = scripted([[(5.0, b"")]])
    s = LLMClient(srv.url, request_timeout_s=0.3).execute(plan())
    assert s.error == "timeout" and near(s.e2e_ms, 300, tol=200)


def test_scripted_stream_cut_short_is_incomplete(scripted) -> None:  # type: ignore[no-untyped-def]
    srv = scripted([[(0.0, SSE_HEAD + chunked(sse("a"))), (0.05, None)]])
    s = LLMClient(srv.url).execute(plan())
    assert s.error == "incomplete" and s.output_chunks == 1 and s.ttft_ms is not None


def test_scripted_stream_without_done_is_incomplete(scripted) -> None:  # type: ignore[no-untyped-def]
    srv = scripted([[(0.0, SSE_HEAD + chunked(sse("a")) + END)]])
    s = LLMClient(srv.url).execute(plan())
    assert s.error == "incomplete"


def test_scripted_error_event_in_a_200_stream(scripted) -> None:  # type: ignore[no-untyped-def]
    err = b'data: {"error": {"message": "engine died"}}\n\n'
    srv = scripted([[(0.0, SSE_HEAD + chunked(sse("a")) + chunked(err) + DONE + END)]])
    s = LLMClient(srv.url).execute(plan())
    assert s.error == "stream_error" and "engine died" in (s.error_detail or "")


def test_non_streamed_json_response(scripted) -> None:  # type: ignore[no-untyped-def]
    body = json.dumps(
        {
            "choices": [{"message": {"content": "hi"}, "finish_reason": "stop"}],
            "usage": {"completion_tokens": 5},
        }
    ).encode()
    srv = scripted(
        [
            [
                (
                    0.1,
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    + f"Content-Length: {len(body)}\r\n\r\n".encode()
                    + body,
                )
            ]
        ]
    )
    s = LLMClient(srv.url).execute(plan(stream=False))
    assert s.ok and s.output_tokens == 5 and s.ttft_ms == pytest.approx(s.e2e_ms, abs=1.0)


def test_keep_alive_is_reused_and_a_stale_connection_is_retried_once(scripted) -> None:  # type: ignore[no-untyped-def]
    ok = SSE_HEAD + chunked(sse("a", finish="stop")) + DONE + END
    srv = scripted([[(0.0, ok)], [(0.0, ok)]])
    client = LLMClient(srv.url)
    assert client.execute(plan()).ok and client.execute(plan()).ok
    assert srv.connections == 1
    # The server closes the idle connection (after the answer); the next request must not fail.
    srv2 = scripted([[(0.0, ok), (0.0, None)], [(0.0, ok)]])
    client2 = LLMClient(srv2.url)
    assert client2.execute(plan()).ok
    gevent.sleep(0.05)
    second = client2.execute(plan())
    assert second.ok, second
    assert srv2.connections == 2


def test_scripted_stale_pooled_connections_are_retried_on_a_new_one(scripted) -> None:  # type: ignore[no-untyped-def]
    # Two requests at once leave two pooled connections, both closed by the server afterwards
    # (as llama-server closes idle ones). The next request must not retry on the other stale
    # pooled connection: it goes again, once, on a new one, and is counted once.
    ok = SSE_HEAD + chunked(sse("a", finish="stop")) + DONE + END
    srv = scripted([[(0.05, ok), (0.0, None)], [(0.05, ok), (0.0, None)], [(0.0, ok)], [(0.0, ok)]])
    client = LLMClient(srv.url, max_idle=4)
    first = [gevent.spawn(client.execute, plan()) for _ in range(2)]
    gevent.joinall(first, raise_error=True)
    assert all(g.value.ok for g in first) and srv.connections == 2
    gevent.sleep(0.05)
    again = [client.execute(plan()) for _ in range(2)]
    assert [s.error for s in again] == [None, None], [s.error_detail for s in again]
    assert [s.retries for s in again] == [1, 0] and srv.connections == 3
    assert len(srv.requests) == 4  # the lost attempts never reached a live connection


@STAMPS_COMPARED
def test_the_stacks_own_timings_are_recorded_with_the_first_event(scripted) -> None:  # type: ignore[no-untyped-def]
    """Server-Timing (the gateway's gw and upstream) and llama.cpp's `timings` in the last
    chunk: read once per request, beside the first event the client saw."""
    head = SSE_HEAD.replace(
        b"X-Cache: miss\r\n", b"X-Cache: miss\r\nServer-Timing: gw;dur=0.8, upstream;dur=31.5\r\n"
    )
    last = {"choices": [], "timings": {"prompt_ms": 28.25, "predicted_ms": 12.0, "cache_n": 2}}
    srv = scripted(
        [
            [
                (0.0, head + chunked(sse(role=True))),
                (0.1, chunked(sse("a", finish="length"))),
                (0.0, chunked(b"data: " + json.dumps(last).encode() + b"\n\n") + DONE + END),
            ]
        ]
    )
    s = LLMClient(srv.url).execute(plan())
    assert s.ok and (s.gateway_ms, s.upstream_ms) == (0.8, 31.5)
    assert (s.server_prefill_ms, s.server_decode_ms, s.cached_tokens) == (28.25, 12.0, 2)
    assert s.first_event_ms is not None and s.ttft_ms is not None and s.ttfb_ms is not None
    # Against when the server did send (a busy runner's sleep overshot 100 ms by 57 once).
    gap = srv.sent_ms[1] - srv.sent_ms[0]
    assert s.ttfb_ms <= s.first_event_ms and near(s.ttft_ms - s.first_event_ms, gap)
