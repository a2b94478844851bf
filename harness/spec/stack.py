"""The stack spec: which services run, how many, and what sits in front of what.

Pure data (no I/O). Ports are never part of the spec: providers allocate them at start.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Discriminator, Field, Tag, model_validator

from harness.spec.base import Strict
from harness.spec.external import ExternalSpec
from harness.spec.gateway import GatewaySettings
from harness.spec.images import ImageMap


class LlamaCppServer(Strict):
    """llama.cpp `llama-server` with a GGUF model (real tokens on CPU)."""

    kind: Literal["llama_cpp"] = "llama_cpp"
    # Path to a GGUF file; empty means the SmolLM2-135M-Instruct model `make install` unpacks.
    model_path: str = ""
    served_name: str = "smollm2-135m"
    threads: int = Field(1, ge=1)
    slots: int = Field(8, ge=1)
    context: int = Field(8192, ge=256)
    # Default generation budget when a request names none (-1: unlimited).
    n_predict: int = Field(-1, ge=-1)


class SimulatorServer(Strict):
    """llm-d-inference-sim: vLLM's API and metric names with known timings, no weights."""

    kind: Literal["simulator"] = "simulator"
    served_name: str = "sim-model"
    time_to_first_token_ms: int = Field(100, ge=0)
    inter_token_latency_ms: int = Field(20, ge=0)
    max_num_seqs: int = Field(64, ge=1)
    max_model_len: int = Field(4096, ge=16)
    failure_injection_rate: int = Field(0, ge=0, le=100)
    # Which failures it injects (empty: any of them, 4xx and 5xx alike).
    failure_types: tuple[
        Literal[
            "rate_limit",
            "invalid_api_key",
            "context_length",
            "server_error",
            "invalid_request",
            "model_not_found",
        ],
        ...,
    ] = ()
    seed: int = 1
    mode: Literal["random", "echo"] = "random"
    # Its KV cache (`--enable-kvcache`): prompts in blocks of `block_size` tokens, at most
    # `kv_cache_size` blocks held; usage in vllm:kv_cache_usage_perc, prefix reuse in
    # vllm:prefix_cache_hits / _queries and each answer's cached_tokens. Off (the default, as
    # before), usage stays 0 and nothing is reused. A request that does not fit is refused (500).
    enable_kvcache: bool = False
    kv_cache_size: int = Field(1024, ge=1)
    block_size: Literal[8, 16, 32, 64, 128] = 16


class VllmServer(Strict):
    """vLLM's OpenAI server (GPU; container provider only)."""

    kind: Literal["vllm"] = "vllm"
    model: str = "Qwen/Qwen2.5-0.5B-Instruct"
    served_name: str = "vllm-model"
    gpu_memory_utilization: float = Field(0.85, gt=0, le=1)
    max_model_len: int = Field(4096, ge=16)
    extra_args: tuple[str, ...] = ()


SERVER_KINDS = ("llama_cpp", "simulator", "vllm")


def _server_kind(value: object) -> str:
    # `kind` may be left out: llama.cpp is the embedded default.
    kind = value.get("kind", "llama_cpp") if isinstance(value, dict) else getattr(value, "kind", "")
    return str(kind)


ModelServer = Annotated[
    Annotated[LlamaCppServer, Tag("llama_cpp")]
    | Annotated[SimulatorServer, Tag("simulator")]
    | Annotated[VllmServer, Tag("vllm")],
    Discriminator(
        _server_kind,
        custom_error_type="unknown_server_kind",
        custom_error_message=f"unknown server kind; valid: {', '.join(SERVER_KINDS)}",
    ),
]


class ModelPool(Strict):
    replicas: int = Field(1, ge=1, le=16)
    server: ModelServer = LlamaCppServer()


class GatewaySpec(Strict):
    replicas: int = Field(2, ge=1, le=16)
    settings: GatewaySettings = GatewaySettings()


class PrometheusSpec(Strict):
    scrape_interval_s: float = Field(1.0, gt=0)
    evaluation_interval_s: float = Field(1.0, gt=0)
    # Alert rule timing: PRACTICES.md's production values by default; test profiles shorten them.
    error_rate_threshold: float = Field(0.05, ge=0, le=1)
    error_rate_window: str = "5m"
    error_rate_for: str = "2m"
    slow_p95_seconds: float = Field(10.0, gt=0)
    slow_window: str = "5m"
    slow_for: str = "5m"
    gpu_memory_ratio: float = Field(0.95, gt=0, le=1)
    gpu_memory_for: str = "5m"


class AlertmanagerSpec(Strict):
    group_wait_s: float = Field(1.0, ge=0)
    group_interval_s: float = Field(5.0, gt=0)
    repeat_interval: str = "1h"


class NginxSpec(Strict):
    # Streams pass through unbuffered; `true` buffers them (and ignores X-Accel-Buffering), the
    # misconfiguration that makes every token arrive at once.
    buffering: bool = False


ProxyTarget = Literal["primary", "fallback", "redis"]


class ToxiproxySpec(Strict):
    # Each named target gets one proxy per replica: primary-0, primary-1, fallback-0, redis.
    front: tuple[ProxyTarget, ...] = ("primary", "fallback", "redis")


class GpuSimExporterSpec(Strict):
    # Simulated figures: this machine has no GPU (on one, an NVML exporter feeds the same rule).
    total_bytes: int = Field(80 * 2**30, ge=1)
    idle_ratio: float = Field(0.5, ge=0, le=1)


class FaultsSpec(Strict):
    """Parts the stack runs only so that faults can be injected (the `gpu_memory` fault,
    `http_error` and `stream_stall`)."""

    # An nginx fault front before each replica of these pools (named httpfault-primary-0, ...).
    http_front: tuple[Literal["primary", "fallback"], ...] = ()
    gpu_sim_exporter: GpuSimExporterSpec | None = None


class StackSpec(Strict):
    kind: Literal["stack"] = "stack"
    name: str = "reference"
    provider: Literal["local", "docker", "external"] = "local"
    # provider `external`: a deployment the harness did not start (see harness/spec/external.py);
    # `gateway.settings` then only declares what the candidate says it does (judged by the policy).
    external: ExternalSpec | None = None
    primary: ModelPool = ModelPool(replicas=2)
    fallback: ModelPool = ModelPool(replicas=1, server=LlamaCppServer(n_predict=50))
    gateway: GatewaySpec = GatewaySpec()
    nginx: NginxSpec = NginxSpec()
    prometheus: PrometheusSpec = PrometheusSpec()
    alertmanager: AlertmanagerSpec = AlertmanagerSpec()
    toxiproxy: ToxiproxySpec = ToxiproxySpec()
    faults: FaultsSpec = FaultsSpec()
    # Container images by service (docker provider); unset entries keep their defaults.
    images: ImageMap = ImageMap()

    @model_validator(mode="after")
    def _external_has_its_section(self) -> StackSpec:
        if self.provider == "external" and self.external is None:
            raise ValueError("provider 'external' needs an `external:` section (at least its url)")
        if self.provider != "external" and self.external is not None:
            raise ValueError(
                f"an `external:` section needs provider 'external', not {self.provider!r}"
            )
        return self

    @model_validator(mode="after")
    def _vllm_needs_docker(self) -> StackSpec:
        for pool_name, pool in (("primary", self.primary), ("fallback", self.fallback)):
            if pool.server.kind == "vllm" and self.provider != "docker":
                raise ValueError(
                    f"{pool_name}.server.kind 'vllm' needs provider 'docker' (it runs vLLM's image "
                    "on a GPU); use 'llama_cpp' or 'simulator' with the local provider"
                )
        return self

    def pools(self) -> dict[str, ModelPool]:
        return {"primary": self.primary, "fallback": self.fallback}
