"""The reference stack as containers: same orchestration as `local`, the container launcher.

Model servers are llm-d-inference-sim (fast, hermetic, no weights); every other service is the
real one (nginx, gateways, Redis, Toxiproxy, Prometheus, Alertmanager, exporters).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from docker_support import DOCKER_SUITE, Engine, wait_until

from harness.spec.gateway import FallbackSettings, GatewaySettings
from harness.spec.stack import GatewaySpec, ModelPool, SimulatorServer, StackSpec
from harness.stack.orchestrator import start_stack
from harness.stack.provider import RunningStack

pytestmark = [pytest.mark.docker, pytest.mark.slow, *DOCKER_SUITE]

SIM_SPEC = StackSpec(
    provider="docker",
    primary=ModelPool(
        replicas=2,
        server=SimulatorServer(time_to_first_token_ms=30, inter_token_latency_ms=5),
    ),
    fallback=ModelPool(
        replicas=1,
        server=SimulatorServer(
            served_name="sim-fallback", time_to_first_token_ms=10, inter_token_latency_ms=2
        ),
    ),
    # A paused replica holds a request until this timeout, then the gateway falls back.
    gateway=GatewaySpec(settings=GatewaySettings(fallback=FallbackSettings(primary_timeout_s=1.0))),
)


@pytest.fixture(scope="module")
def container_stack(docker_engine: Engine) -> Iterator[RunningStack]:
    docker_engine.require(
        "simulator",
        "gateway",
        "nginx",
        "redis",
        "toxiproxy",
        "prometheus",
        "alertmanager",
        "nginx_exporter",
        "redis_exporter",
        "victoria_logs",
        "vlagent",
    )
    lines: list[str] = []
    with start_stack(SIM_SPEC, provider="docker", progress=lines.append) as stack:
        print("\n" + "\n".join(lines))
        yield stack
    containers = docker_engine.client.containers.list(all=True)
    assert [c.name for c in containers] == [], "teardown left containers behind"


def _request(stack: RunningStack, prompt: str, stream: bool) -> tuple[str, dict[str, object]]:
    body = {
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": 16,
        "temperature": 0.7,  # not cacheable: every request reaches a model server
        "stream": stream,
    }
    return f"{stack.endpoints.nginx}/v1/chat/completions", body


def headers(stack: RunningStack) -> dict[str, str]:
    return {"Authorization": f"Bearer {stack.endpoints.api_key}"}


def chat_once(stack: RunningStack, prompt: str) -> httpx.Response:
    url, body = _request(stack, prompt, stream=False)
    return httpx.post(url, json=body, headers=headers(stack), timeout=30)


def chat_stream(stack: RunningStack, prompt: str) -> tuple[str, str]:
    """(generated text, X-Served-By) of a streamed chat completion."""
    url, body = _request(stack, prompt, stream=True)
    text = ""
    with httpx.stream("POST", url, json=body, headers=headers(stack), timeout=30) as r:
        assert r.status_code == 200, r.read()
        for line in r.iter_lines():
            if line.startswith("data: ") and line != "data: [DONE]":
                for choice in json.loads(line[6:]).get("choices", []):
                    text += (choice.get("delta") or {}).get("content") or ""
        return text, r.headers.get("x-served-by", "")


def test_streamed_completion_comes_back_through_nginx(
    container_stack: RunningStack, docker_engine: Engine
) -> None:
    text, served_by = chat_stream(container_stack, "Say hello")
    assert text and served_by == "primary"
    # Every service is a container on the host network: nothing has a bridge address.
    running = docker_engine.client.containers.list()
    assert len(running) == len(container_stack.services)
    for c in running:
        assert c.attrs["HostConfig"]["NetworkMode"] == "host", c.name
    # Container output lands in the run's log files, as the local provider's does.
    assert (container_stack.run_dir / "logs" / "primary-0.log").stat().st_size > 0


@pytest.mark.chaos
def test_paused_primary_container_requests_still_succeed(container_stack: RunningStack) -> None:
    victim = container_stack.service("primary-0")
    victim.pause()
    try:
        served = []
        for i in range(6):
            r = chat_once(container_stack, f"question {i}")
            assert r.status_code == 200, r.text
            served.append(r.headers.get("x-served-by"))
        assert set(served) <= {"primary", "fallback"}, served
        # Requests routed to the frozen replica timed out there and were answered by fallback.
        assert "fallback" in served, served
    finally:
        victim.resume()
    # Back to normal: the resumed replica serves again and nothing fell over meanwhile.
    assert all(s.alive() for s in container_stack.services.values())
    wait_until(lambda: container_stack.services["primary-0"].definition.ready.probe() is None)
    assert chat_once(container_stack, "after resume").status_code == 200


def test_reference_stack_with_llama_cpp_streams_real_tokens(docker_engine: Engine) -> None:
    """The default stack (llama.cpp servers with the SmolLM2 GGUF, bind-mounted) as containers."""
    docker_engine.require("llama_cpp", "gateway", "nginx", "redis", "toxiproxy", "prometheus")
    before = {c.id for c in docker_engine.client.containers.list(all=True)}
    spec = StackSpec(provider="docker")
    with start_stack(spec, provider="docker", wait_for_scrapes=False) as stack:
        text, served_by = chat_stream(stack, "Name a colour.")
        assert text.strip() and served_by == "primary"
        assert stack.service("primary-0").alive()
    assert {c.id for c in docker_engine.client.containers.list(all=True)} == before


def test_the_log_store_container_holds_each_layers_lines(container_stack: RunningStack) -> None:
    """VictoriaLogs as a container: the gateway containers push their lines, nginx's syslog
    reaches it, and one request is found in both layers by its id."""
    from harness.observe.logs import LogStore

    ep = container_stack.endpoints
    assert ep.logs is not None
    url, body = _request(container_stack, "log store", stream=False)
    r = httpx.post(
        url, json=body, headers={**headers(container_stack), "X-Request-Id": "dk-1"}, timeout=30
    )
    assert r.status_code == 200, r.text
    store = LogStore(ep.logs)
    store.settle(1.0)
    lines = store.lines_of(["dk-1"])["dk-1"]
    assert {x.layer for x in lines} == {"gateway", "nginx"}, lines
    # The vlagent container follows the model server containers' log files.
    replicas = {r.get("replica") for r in store.query("layer:=model")}
    assert {"primary-0", "primary-1", "fallback-0"} <= replicas, replicas
