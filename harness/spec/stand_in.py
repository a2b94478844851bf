"""A GPU stack spec run without its GPU: every vLLM pool served by llm-d-inference-sim instead.

The simulator speaks vLLM's API and exports vLLM's metric names, so the same spec (its served
names, pools, replicas, gateway, nginx, Prometheus rules) and the same gate profile run end to
end on a machine with no GPU; only the engine behind the names is simulated. The stand-in runs
as local processes (the simulator needs no container) unless `--provider` says otherwise, asks
for no GPU in any container, and is named apart so that its runs never share a history with the
real stack's.
"""

from __future__ import annotations

from harness.errors import ConfigError, ConfigProblem
from harness.spec.stack import ModelPool, SimulatorServer, StackSpec, VllmServer

STAND_INS = ("simulator",)
# What the simulator answers with in vLLM's place: a published `vllm bench serve` run of
# Qwen2.5-0.5B-Instruct on one GPU measured TTFT p50 61 ms and ITL p50 5.5 ms at 10 requests/s
# (reports/profiles/gpu.yaml gives the source), so the GPU profile judges figures of that size.
STAND_IN_TTFT_MS = 60
STAND_IN_ITL_MS = 6
# Room for the GPU profile's load: vLLM's own default batch of 256 sequences.
STAND_IN_MAX_NUM_SEQS = 256
# KV blocks of 16 tokens: 8,192 hold 131,072 tokens, far more than the load keeps in flight
# (a request the simulator's cache cannot hold is refused, which vLLM would queue instead).
STAND_IN_KV_BLOCKS = 8192


def _simulator_for(server: VllmServer, pool: str) -> SimulatorServer:
    return SimulatorServer(
        served_name=server.served_name,
        # The gate's PII probe needs a model that repeats the planted value when asked, as an
        # instruction-following model does; the simulator's fallback echoes (as in
        # tests/fixtures/sim-stack.yaml), the primary answers at random.
        mode="echo" if pool == "fallback" else "random",
        max_model_len=server.max_model_len,
        time_to_first_token_ms=STAND_IN_TTFT_MS,
        inter_token_latency_ms=STAND_IN_ITL_MS,
        max_num_seqs=STAND_IN_MAX_NUM_SEQS,
        # vLLM keeps a prefix cache and reports its usage: so does the stand-in.
        enable_kvcache=True,
        kv_cache_size=STAND_IN_KV_BLOCKS,
    )


def stand_in(spec: StackSpec, kind: str) -> StackSpec:
    """`spec` with each vLLM pool's server replaced by `kind` (only "simulator" exists); a spec
    with no vLLM pool, or an unknown kind, is a configuration error of `--stand-in`."""
    source = "--stand-in"
    if kind not in STAND_INS:
        raise ConfigError(
            source,
            [ConfigProblem("", f"{kind!r}; expected one of: {', '.join(STAND_INS)}")],
        )
    pools: dict[str, ModelPool] = {}
    for name, pool in spec.pools().items():
        if isinstance(pool.server, VllmServer):
            server = _simulator_for(pool.server, name)
            pools[name] = pool.model_copy(update={"server": server})
    if not pools:
        raise ConfigError(
            source,
            [
                ConfigProblem(
                    "",
                    f"stack {spec.name!r} has no vllm pool to stand in for (its pools: "
                    + ", ".join(f"{n} {p.server.kind}" for n, p in spec.pools().items())
                    + ")",
                )
            ],
        )
    # A container asking for the card (the gateways' NVML collector) would not start without one.
    no_gpu = {
        key: getattr(spec.images, key).model_copy(update={"gpu": False})
        for key in type(spec.images).model_fields
        if getattr(spec.images, key).gpu
    }
    return spec.model_copy(
        update={
            **pools,
            "name": f"{spec.name} (stand-in: {kind})",
            "provider": "local" if spec.provider == "docker" else spec.provider,
            "images": spec.images.model_copy(update=no_gpu),
        }
    )
