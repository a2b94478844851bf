"""PII filtering of model output, streamed and not, with the scripted fake upstream.

A real model cannot be made to print an address split across two SSE chunks on demand; the
fake upstream does exactly that, and holds its stream after the first chunk until the test has
received it, which shows the gateway passes a stream through rather than buffering it.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable

import pytest
from gateway_fixtures import *  # noqa: F403
from gateway_fixtures import FakeUpstreamServer, GatewayProcess

pytestmark = [pytest.mark.integration]

FILTERED = "Reach me at [EMAIL] or [PHONE] ok"


def deltas(lines: list[str], chat: bool) -> list[str]:
    out = []
    for line in lines:
        data = line.removeprefix("data: ")
        if not line.startswith("data: ") or data == "[DONE]":
            continue
        for choice in json.loads(data).get("choices", []):
            piece = choice.get("delta", {}).get("content") if chat else choice.get("text")
            if piece:
                out.append(piece)
    return out


@pytest.fixture
def pii_gateway(
    gateway_factory: Callable[..., GatewayProcess], fake_upstream: FakeUpstreamServer
) -> GatewayProcess:
    fake_upstream.mode = "pii"
    return gateway_factory(primary_urls=(fake_upstream.url,))


def test_plain_answer_is_filtered_and_counted(pii_gateway: GatewayProcess) -> None:
    with pii_gateway.client() as c:
        r = c.post("/v1/completions", json={"prompt": "contact?", "max_tokens": 20})
    assert r.json()["choices"][0]["text"] == FILTERED
    assert pii_gateway.metric("llm_pii_redactions_total", kind="email") == 1
    assert pii_gateway.metric("llm_pii_redactions_total", kind="phone") == 1


@pytest.mark.parametrize(
    ("path", "chat"), [("/v1/chat/completions", True), ("/v1/completions", False)]
)
def test_pattern_split_across_stream_chunks_is_filtered(
    pii_gateway: GatewayProcess, path: str, chat: bool
) -> None:
    body: dict[str, object] = {"max_tokens": 20, "stream": True}
    body.update({"messages": [{"role": "user", "content": "hi"}]} if chat else {"prompt": "hi"})
    with pii_gateway.client() as c:
        r = c.post(path, json=body)
    pieces = deltas(r.text.splitlines(), chat)
    assert "".join(pieces) == FILTERED
    assert len(pieces) > 1  # still streamed piece by piece
    assert not any("@" in p or "4567" in p for p in pieces)


def test_stream_is_passed_through_not_buffered(
    gateway_factory: Callable[..., GatewayProcess], fake_upstream: FakeUpstreamServer
) -> None:
    fake_upstream.mode = "pii"
    fake_upstream.gate = threading.Event()
    gw = gateway_factory(primary_urls=(fake_upstream.url,))
    body = {"messages": [{"role": "user", "content": "hi"}], "stream": True}
    received: list[str] = []
    # The fake holds its second chunk until the gate opens (30 s at most); a buffering gateway
    # would send nothing before then and the 20 s read timeout would end the test.
    with gw.client(timeout=20) as c, c.stream("POST", "/v1/chat/completions", json=body) as r:
        lines = r.iter_lines()
        for line in lines:
            received.append(line)
            if deltas([line], chat=True):
                break
        assert deltas(received, chat=True) == ["Reach me at "]
        fake_upstream.gate.set()
        received.extend(lines)
    assert "".join(deltas(received, chat=True)) == FILTERED
    assert "data: [DONE]" in received
    assert gw.metric("llm_time_to_first_token_seconds_count") == 1


def test_client_leaving_mid_stream_settles_the_request(
    gateway_factory: Callable[..., GatewayProcess], fake_upstream: FakeUpstreamServer
) -> None:
    fake_upstream.mode = "pii"
    fake_upstream.gate = threading.Event()  # never opened: the upstream stalls after one chunk
    gw = gateway_factory(primary_urls=(fake_upstream.url,))
    body = {"messages": [{"role": "user", "content": "hi"}], "stream": True}
    with gw.client(timeout=20) as c, c.stream("POST", "/v1/chat/completions", json=body) as r:
        for line in r.iter_lines():
            if deltas([line], chat=True):
                break  # leave with the stream open
    active = None
    deadline = time.monotonic() + 15
    while active != 0 and time.monotonic() < deadline:
        time.sleep(0.2)
        active = gw.metric("llm_active_requests")
    assert active == 0
    assert [e.get("error") for e in gw.log_lines()] == ["client_disconnected"]


@pytest.mark.serial  # a hold measured against a 0.5 s timer: no busy neighbour
def test_the_filters_wait_for_the_end_of_a_first_word_is_measured(
    gateway_factory: Callable[..., GatewayProcess], fake_upstream: FakeUpstreamServer
) -> None:
    """ "Alas" could be the start of an address: it waits for the next delta, and the gateway
    reports that wait (llm_pii_filter_hold_seconds), apart from its own overhead."""
    fake_upstream.mode = "pii"
    fake_upstream.pii_deltas = ("Alas", ", the gate is open")
    fake_upstream.gate = threading.Event()  # the second delta comes 0.5 s after the first
    gw = gateway_factory(primary_urls=(fake_upstream.url,))
    body = {"messages": [{"role": "user", "content": "hi"}], "stream": True}
    threading.Timer(0.5, fake_upstream.gate.set).start()
    with gw.client(timeout=20) as c:
        held = c.post("/v1/chat/completions", json=body)
        assert "".join(deltas(held.text.splitlines(), chat=True)) == "Alas, the gate is open"
        assert (gw.metric("llm_pii_filter_hold_seconds_sum") or 0.0) >= 0.3
        assert gw.metric("llm_pii_filter_hold_seconds_bucket", le="0.0005") == 0
        # A first delta that ends at a space goes out at once: counted in the first bucket.
        fake_upstream.pii_deltas = ("Alas ", "the gate is open")
        c.post("/v1/chat/completions", json=body).raise_for_status()
    assert gw.metric("llm_pii_filter_hold_seconds_bucket", le="0.0005") == 1
    assert gw.metric("llm_pii_filter_hold_seconds_count") == 2
    holds = [e["pii_hold_ms"] for e in gw.log_lines() if "pii_hold_ms" in e]
    assert len(holds) == 2 and holds[0] >= 300 and holds[1] < 0.5
