"""The gateway reports its own cost: X-Gateway-Overhead-Ms on every answer and a histogram.

Upstream: llm-d-inference-sim with a fixed 20 ms TTFT, so the model server's share of every
request is known and must not show up in the gateway's own figure.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from gateway_fixtures import *  # noqa: F403
from gateway_fixtures import GatewayProcess

pytestmark = [pytest.mark.integration, pytest.mark.serial]

CHAT = "/v1/chat/completions"
SIM_TTFT_MS = 20.0


@pytest.fixture(scope="module")
def gateway(gateway_factory: Callable[..., GatewayProcess], sim_server: str) -> GatewayProcess:
    return gateway_factory(primary_urls=(sim_server,))


def body(stream: bool) -> dict[str, object]:
    return {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4, "stream": stream}


def test_every_answer_carries_the_overhead_without_the_model_servers_time(
    gateway: GatewayProcess,
) -> None:
    seen: list[float] = []
    with gateway.client() as c:
        for stream in (False, True):  # first of each kind: one-off imports and connections
            c.post(CHAT, json=body(stream)).raise_for_status()
        before = gateway.metric("llm_gateway_overhead_seconds_count") or 0.0
        for stream in (False, True):
            for _ in range(3):
                with c.stream("POST", CHAT, json=body(stream)) as r:
                    r.read()
                    assert r.status_code == 200
                    seen.append(float(r.headers["x-gateway-overhead-ms"]))
        for path in ("/healthz", "/metrics"):
            assert float(c.get(path).headers["x-gateway-overhead-ms"]) >= 0
        unauthorized = c.post(CHAT, json=body(False), headers={"X-API-Key": "sk-unknown"})
        assert unauthorized.status_code == 403
        assert float(unauthorized.headers["x-gateway-overhead-ms"]) >= 0
    # Each answer waited at least the simulator's 20 ms TTFT; none of it is the gateway's.
    assert all(0 < ms < SIM_TTFT_MS for ms in seen), seen
    after = gateway.metric("llm_gateway_overhead_seconds_count") or 0.0
    assert after - before == len(seen) + 1  # the 403 counts too; /healthz and /metrics do not
    assert (gateway.metric("llm_gateway_overhead_seconds_sum") or 0.0) > 0
