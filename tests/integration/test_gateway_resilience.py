"""Fallback, circuit breaker and graceful degradation with a real slow or dead primary.

The primary is llm-d-inference-sim behind Toxiproxy (latency toxic = slow, disabled proxy =
down). The fallback pool is the scripted fake upstream where the test must see exactly what the
gateway sent (the clamped max_tokens) or make the fallback fail too.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator

import pytest
from gateway_fixtures import *  # noqa: F403
from gateway_fixtures import FakeUpstreamServer, GatewayProcess, Toxiproxy

from gateway.errors import DEGRADED_MESSAGE

pytestmark = [pytest.mark.integration]

CHAT = "/v1/chat/completions"
FAST_FAILOVER = {
    "fallback": {"primary_timeout_s": 1.0, "fallback_timeout_s": 1.0, "fallback_max_tokens": 50},
    "breaker": {"failure_threshold": 2, "recovery_timeout_s": 1.0},
}
_names = itertools.count()


@pytest.fixture
def primary_proxy(toxiproxy: Toxiproxy, sim_server: str) -> tuple[str, str]:
    """A fresh Toxiproxy proxy in front of the simulator: (proxy name, gateway URL)."""
    name = f"res-primary-{next(_names)}"
    listen = toxiproxy.create(name, sim_server.removeprefix("http://"))
    return name, f"http://{listen}"


@pytest.fixture
def fallback_fake() -> Iterator[FakeUpstreamServer]:
    fake = FakeUpstreamServer()
    fake.start()
    yield fake
    fake.stop()


def body(**extra: object) -> dict[str, object]:
    return {"messages": [{"role": "user", "content": "hello"}], "max_tokens": 500, **extra}


def start(factory: Callable[..., GatewayProcess], primary: str, fallback: str) -> GatewayProcess:
    return factory(primary_urls=(primary,), fallback_urls=(fallback,), settings=FAST_FAILOVER)


def test_slow_primary_falls_back_with_clamped_max_tokens(
    gateway_factory: Callable[..., GatewayProcess],
    toxiproxy: Toxiproxy,
    primary_proxy: tuple[str, str],
    fallback_fake: FakeUpstreamServer,
) -> None:
    name, url = primary_proxy
    gw = start(gateway_factory, url, fallback_fake.url)
    with toxiproxy.toxic(name, "latency", latency=3000), gw.client() as c:
        r = c.post(CHAT, json=body())
    assert r.status_code == 200, r.text
    assert r.headers["x-served-by"] == "fallback"
    assert r.headers["x-fallback-reason"] == "timeout"
    assert fallback_fake.received[-1]["max_tokens"] == 50
    assert fallback_fake.received[-1]["model"] == "fallback"
    assert gw.metric("llm_fallbacks_total", from_pool="primary", reason="timeout") == 1


def test_slow_first_token_moves_a_stream_to_the_fallback(
    gateway_factory: Callable[..., GatewayProcess],
    toxiproxy: Toxiproxy,
    primary_proxy: tuple[str, str],
    fallback_fake: FakeUpstreamServer,
) -> None:
    name, url = primary_proxy
    gw = start(gateway_factory, url, fallback_fake.url)
    # The toxic stays: Toxiproxy 2.12 blocks a toxic removal for 25 s or more once a client has
    # hung up on a streaming link under a latency toxic. The proxy is this test's alone.
    toxiproxy.add_toxic(name, "slow-first-token", "latency", latency=3000)
    with gw.client() as c:
        r = c.post(CHAT, json=body(stream=True))
    assert r.status_code == 200
    assert r.headers["x-served-by"] == "fallback"
    assert "fake " in r.text and r.text.rstrip().endswith("data: [DONE]")
    assert fallback_fake.received[-1]["stream_options"] == {"include_usage": True}


def test_dead_primary_opens_the_breaker_and_recovers(
    gateway_factory: Callable[..., GatewayProcess],
    toxiproxy: Toxiproxy,
    primary_proxy: tuple[str, str],
    fallback_fake: FakeUpstreamServer,
) -> None:
    name, url = primary_proxy
    gw = start(gateway_factory, url, fallback_fake.url)
    with gw.client() as c:
        with toxiproxy.down(name):
            reasons = [c.post(CHAT, json=body()).headers["x-fallback-reason"] for _ in range(3)]
            assert reasons == ["connect_error", "connect_error", "breaker_open"]
            assert gw.metric("llm_circuit_breaker_state", pool="primary") == 2
            assert (
                gw.metric(
                    "llm_circuit_breaker_transitions_total",
                    pool="primary",
                    from_state="closed",
                    to_state="open",
                )
                == 1
            )
        # Primary is back; after the 1 s recovery timeout one probe goes through and closes it.
        served = ""
        deadline = time.monotonic() + 30
        while served != "primary" and time.monotonic() < deadline:
            time.sleep(0.3)
            served = c.post(CHAT, json=body()).headers["x-served-by"]
        assert served == "primary"
    assert gw.metric("llm_circuit_breaker_state", pool="primary") == 0
    assert (
        gw.metric(
            "llm_circuit_breaker_transitions_total",
            pool="primary",
            from_state="half_open",
            to_state="closed",
        )
        == 1
    )


def test_primary_5xx_falls_back(
    gateway_factory: Callable[..., GatewayProcess], sim_server: str
) -> None:
    broken = FakeUpstreamServer(mode="status_500")
    broken.start()
    try:
        gw = start(gateway_factory, broken.url, sim_server)
        with gw.client() as c:
            r = c.post(CHAT, json=body())
    finally:
        broken.stop()
    assert r.status_code == 200
    assert r.headers["x-served-by"] == "fallback"
    assert r.headers["x-fallback-reason"] == "upstream_5xx"


@pytest.mark.parametrize("fallback_mode", ["status_500", "hang"])
@pytest.mark.parametrize("stream", [False, True])
def test_nothing_answers_degrades_to_503(
    gateway_factory: Callable[..., GatewayProcess],
    toxiproxy: Toxiproxy,
    primary_proxy: tuple[str, str],
    fallback_mode: str,
    stream: bool,
) -> None:
    name, url = primary_proxy
    fake = FakeUpstreamServer(mode=fallback_mode)
    fake.start()
    try:
        gw = start(gateway_factory, url, fake.url)
        # The client timeout is the hang detector: both pool timeouts are 1 s.
        with toxiproxy.down(name), gw.client(timeout=15) as c:
            r = c.post(CHAT, json=body(stream=stream))
    finally:
        fake.stop()
    assert r.status_code == 503
    assert r.headers["x-served-by"] == "degraded"
    assert r.json()["error"]["message"] == DEGRADED_MESSAGE
    assert int(r.headers["retry-after"]) >= 1
    assert gw.metric("llm_requests_total", status="error", model="primary") == 1
    assert gw.metric("llm_degraded_responses_total") == 1
    # The log line says why each pool failed, not only the last.
    (line,) = [e for e in gw.log_lines() if e.get("served_by") == "degraded"]
    assert [p.split(":")[0] for p in line["pool_errors"]] == ["primary", "fallback"], line
