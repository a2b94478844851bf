"""Streams the model server holds open: one that goes silent ends after
fallback.stream_idle_timeout_s, and one still running is counted against its replica.

The scripted fake upstream sends one delta and then waits for the test's gate; silent for good,
the gateway must end the stream with an error event and [DONE] after the idle timeout and count
it as an error. A rolling update drains a replica by the gateway's count of the requests it sent
there (its /healthz), so that count must hold from the request's sending to the stream's end.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable

import httpx
import pytest
from gateway_fixtures import *  # noqa: F403
from gateway_fixtures import FakeUpstreamServer, GatewayProcess

pytestmark = [pytest.mark.integration]

IDLE_S = 1.0


def test_silent_upstream_ends_the_stream_after_the_idle_timeout(
    gateway_factory: Callable[..., GatewayProcess], fake_upstream: FakeUpstreamServer
) -> None:
    fake_upstream.mode = "pii"
    fake_upstream.gate = threading.Event()  # never opened: silent after the first delta
    gw = gateway_factory(
        primary_urls=(fake_upstream.url,), settings={"fallback": {"stream_idle_timeout_s": IDLE_S}}
    )
    body = {"messages": [{"role": "user", "content": "hi"}], "stream": True}
    t0 = time.monotonic()
    with gw.client(timeout=20) as c, c.stream("POST", "/v1/chat/completions", json=body) as r:
        lines = [line for line in r.iter_lines() if line.startswith("data: ")]
    took = time.monotonic() - t0
    fake_upstream.gate.set()
    assert IDLE_S <= took < 10 * IDLE_S, took
    assert lines[-1] == "data: [DONE]"
    error = json.loads(lines[-2].removeprefix("data: "))["error"]
    assert error["code"] == "stream_broken"
    assert gw.metric("llm_requests_total", status="error", model="primary") == 1
    assert next(e["error"] for e in gw.log_lines() if "error" in e).startswith("stream_broken")


def test_a_replica_counts_the_streams_sent_to_it_until_they_end(
    gateway_factory: Callable[..., GatewayProcess], fake_upstream: FakeUpstreamServer
) -> None:
    fake_upstream.mode = "pii"
    fake_upstream.gate = threading.Event()
    gw = gateway_factory(primary_urls=(fake_upstream.url,))

    def in_flight() -> dict[str, int]:
        pools = httpx.get(gw.url + "/healthz", timeout=10, trust_env=False).json()["pools"]
        counts: dict[str, int] = pools["primary"]["in_flight"]
        return counts

    body = {"messages": [{"role": "user", "content": "hi"}], "stream": True}
    assert in_flight() == {}
    with gw.client(timeout=20) as c, c.stream("POST", "/v1/chat/completions", json=body) as r:
        lines = r.iter_lines()
        assert next(line for line in lines if line.startswith("data: "))
        assert in_flight() == {fake_upstream.url: 1}  # its first delta came, the rest waits
        fake_upstream.gate.set()
        assert [line for line in lines if line.startswith("data: ")][-1] == "data: [DONE]"
    deadline = time.monotonic() + 10
    while in_flight() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert in_flight() == {}
