"""Two versions sharing one set of services, as a rollout's do: the candidate's stack starts no
Redis, Prometheus, Alertmanager or log store of its own; its gateways count their rate limits in
the baseline's Redis, the baseline's Prometheus scrapes its targets labelled by version, and its
lines land in the baseline's log store marked with its name."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
import redis

from harness.clients.poll import poll_until
from harness.clients.prometheus import PrometheusClient
from harness.observe.logs import LogStore
from harness.spec.stack import ModelPool, SimulatorServer, StackSpec
from harness.stack import SHAREABLE, RunningStack, SharedServices, scrape_beside
from harness.stack.orchestrator import start_stack

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SPEC = StackSpec(
    primary=ModelPool(replicas=1, server=SimulatorServer(time_to_first_token_ms=5)),
    fallback=ModelPool(replicas=1, server=SimulatorServer(served_name="sim-fallback")),
)


@pytest.fixture(scope="module")
def versions(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, RunningStack]]:
    run = tmp_path_factory.mktemp("shared")
    with start_stack(SPEC, run_dir=run / "baseline", label="baseline") as baseline:
        shared = SharedServices.of(baseline.endpoints, SHAREABLE)
        with start_stack(
            SPEC, run_dir=run / "candidate", shared=shared, label="candidate"
        ) as candidate:
            scrape_beside(baseline, candidate)
            yield {"baseline": baseline, "candidate": candidate}


def test_the_candidate_uses_the_baselines_redis_prometheus_and_log_store(
    versions: dict[str, RunningStack],
) -> None:
    base, cand = versions["baseline"], versions["candidate"]
    assert not {"redis", "prometheus", "alertmanager", "victoria-logs"} & set(cand.services)
    assert cand.endpoints.prometheus == base.endpoints.prometheus
    assert cand.alerts is None and base.alerts is not None

    rid = f"shared-{uuid.uuid4().hex[:8]}"
    r = httpx.post(
        f"{cand.endpoints.nginx}/v1/chat/completions",
        json={"messages": [{"role": "user", "content": f"hi {rid}"}], "max_tokens": 4},
        headers={"Authorization": f"Bearer {cand.endpoints.api_key}", "X-Request-Id": rid},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    # The rate limit was counted in the baseline's Redis (the candidate has none of its own).
    client = redis.Redis.from_url(base.endpoints.redis)
    try:
        assert client.keys("ratelimit:*")
    finally:
        client.close()

    with PrometheusClient(base.endpoints.prometheus) as prom:
        up = poll_until(
            lambda: prom.query('up{job="gateway"} == 1'),
            30.0,
            0.5,
            until=lambda rows: (
                {row.labels.get("version") for row in rows} == {"baseline", "candidate"}
            ),
        )
    assert {row.labels.get("version") for row in up} == {"baseline", "candidate"}, up

    assert base.endpoints.logs is not None
    store = LogStore(base.endpoints.logs)
    lines = poll_until(
        lambda: store.query(f'request_id:"{rid}" layer:gateway'),
        30.0,
        0.5,
    )
    assert lines and {line.get("stack") for line in lines} == {"candidate"}, lines
    # The candidate's nginx access line, in the same store, says whose it is too.
    access = poll_until(
        lambda: store.query(f'request_id:"{rid}" layer:nginx'),
        30.0,
        0.5,
    )
    assert access and {line.get("stack") for line in access} == {"candidate"}, access
    model = store.model_lines(time.time() - 600, time.time(), limit=1000)
    assert {x.fields.get("stack") for x in model} >= {"baseline", "candidate"}
