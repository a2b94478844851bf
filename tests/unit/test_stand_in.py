"""The GPU stack spec and its stand-in: `--stand-in simulator` keeps the spec's shape (served
names, pools, gateway, rules) and drops only the GPU; the GPU profile's load fits the stack."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import ConfigError
from harness.paths import PROJECT_ROOT
from harness.spec.files import load_stack_spec
from harness.spec.gate import GateSpec
from harness.spec.images import resolve_image_map
from harness.spec.loader import load_yaml_model
from harness.spec.stack import SimulatorServer, StackSpec, VllmServer
from harness.spec.stand_in import STAND_IN_ITL_MS, STAND_IN_TTFT_MS, stand_in
from harness.stack.docker import container_settings
from harness.stack.planner import build_plan

VLLM_STACK = PROJECT_ROOT / "stack" / "vllm-stack.yaml"
GPU_PROFILE = PROJECT_ROOT / "reports" / "profiles" / "gpu.yaml"


@pytest.fixture
def gpu_stack() -> StackSpec:
    return load_stack_spec(VLLM_STACK)


def test_the_stand_in_keeps_the_shape_and_drops_the_gpu(gpu_stack: StackSpec) -> None:
    sim = stand_in(gpu_stack, "simulator")
    for name, pool in sim.pools().items():
        real = gpu_stack.pools()[name]
        assert isinstance(real.server, VllmServer)
        assert isinstance(pool.server, SimulatorServer)
        assert pool.replicas == real.replicas
        assert pool.server.served_name == real.server.served_name
        assert pool.server.max_model_len == real.server.max_model_len
        assert pool.server.time_to_first_token_ms == STAND_IN_TTFT_MS
        assert pool.server.inter_token_latency_ms == STAND_IN_ITL_MS
    assert sim.gateway == gpu_stack.gateway
    assert (sim.prometheus, sim.alertmanager, sim.toxiproxy, sim.nginx) == (
        gpu_stack.prometheus,
        gpu_stack.alertmanager,
        gpu_stack.toxiproxy,
        gpu_stack.nginx,
    )
    # Local processes, the card asked of no gateway container, never the real stack's history.
    assert sim.provider == "local" and sim.name != gpu_stack.name
    assert not resolve_image_map(sim.images).gateway.gpu


def test_the_gpu_stack_hands_the_card_to_vllm_and_the_gateways(
    gpu_stack: StackSpec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hub-home"))
    for run in ("run", "sim"):
        (tmp_path / run).mkdir()
    plan = build_plan(gpu_stack, tmp_path / "run")
    images = resolve_image_map(gpu_stack.images)
    by_name = {s.name: s for s in plan.services}
    for name in ("primary-0", "fallback-0", "gateway-0"):
        definition = by_name[name]
        settings = container_settings(definition, images.get(definition.image), "r1")
        requests = settings.kwargs["device_requests"]
        assert requests[0]["Count"] == -1 and requests[0]["Capabilities"] == [["gpu"]], name
    assert "HF_HUB_OFFLINE" in images.get("vllm").pass_env
    sim = stand_in(gpu_stack, "simulator")
    sim_images = resolve_image_map(sim.images)
    for definition in build_plan(sim, tmp_path / "sim").services:
        settings = container_settings(definition, sim_images.get(definition.image), "r1")
        assert "device_requests" not in settings.kwargs, definition.name


def test_a_stack_with_no_vllm_pool_or_an_unknown_stand_in_is_refused(gpu_stack: StackSpec) -> None:
    with pytest.raises(ConfigError, match=r"no vllm pool.*primary llama_cpp"):
        stand_in(StackSpec(), "simulator")
    with pytest.raises(ConfigError, match=r"--stand-in.*'llama'.*simulator"):
        stand_in(gpu_stack, "llama")


def test_the_gpu_profile_judges_the_gpu_stack_by_absolute_slos(gpu_stack: StackSpec) -> None:
    gate = load_yaml_model(GateSpec, GPU_PROFILE)
    assert gate.stack is not None and (GPU_PROFILE.parent / gate.stack).resolve() == VLLM_STACK
    assert not gate.relative_slos()  # no CPU calibration means anything on a GPU
    assert gate.load is not None
    tenants = gate.load.workload.tenants
    keys = gpu_stack.gateway.settings.auth.api_keys
    # Every tenant's key is the stack's; the gate's own key and the rate-limit probe's spare key
    # (the last) are not spent by the load.
    assert {t.api_key for t in tenants} <= set(keys[1:-1])
    rate = gate.load.load.rate_rps  # type: ignore[union-attr]
    per_key_per_minute = rate * 60 / len(tenants)
    # Poisson arrivals: at 60 a minute a key's count stays under 100 (five sigma above).
    assert per_key_per_minute <= 0.6 * gpu_stack.gateway.settings.rate_limit.requests_per_minute
