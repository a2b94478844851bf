"""Settings of the reference gateway: the production practices of PRACTICES.md, with their defaults.

The gateway process reads a `GatewayRuntimeConfig` (these settings plus the addresses the stack
provider allocated) from the JSON file named by the GATEWAY_CONFIG environment variable.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from harness.spec.base import Strict

DEFAULT_INJECTION_PATTERNS = (
    "ignore previous instructions",
    "disregard above",
    "system:",
    "assistant:",
)


class AuthSettings(Strict):
    enabled: bool = True
    # Keys may also come from the environment (GATEWAY_API_KEYS, comma-separated).
    api_keys: tuple[str, ...] = ("sk-harness-local",)
    allow_anonymous: bool = False


class ValidationSettings(Strict):
    max_prompt_chars: int = Field(10_000, ge=1)
    injection_patterns: tuple[str, ...] = DEFAULT_INJECTION_PATTERNS
    injection_policy: Literal["log", "reject"] = "log"
    # Bodies above this are refused (413) before JSON parsing.
    max_body_bytes: int = Field(1_048_576, ge=1024)


class PiiSettings(Strict):
    enabled: bool = True


class CacheSettings(Strict):
    enabled: bool = True
    ttl_s: int = Field(3600, ge=1)
    # Only deterministic requests are cached by default (temperature 0 / greedy).
    only_deterministic: bool = True


class RateLimitSettings(Strict):
    enabled: bool = True
    requests_per_minute: int = Field(100, ge=1)
    fail_open: bool = True


class FallbackSettings(Strict):
    enabled: bool = True
    primary_timeout_s: float = Field(5.0, gt=0)
    fallback_timeout_s: float = Field(5.0, gt=0)
    fallback_max_tokens: int = Field(50, ge=1)
    # Once a stream has started it cannot move to another pool; a silence this long ends it.
    stream_idle_timeout_s: float = Field(30.0, gt=0)


class BreakerSettings(Strict):
    failure_threshold: int = Field(5, ge=1)
    recovery_timeout_s: float = Field(60.0, gt=0)


class RoutingSettings(Strict):
    enabled: bool = True
    # Prompts shorter than this go to the small pool when the large one is busy (route_to_model).
    short_prompt_chars: int = Field(500, ge=0)
    busy_active_requests: int = Field(32, ge=1)


class CostSettings(Strict):
    # USD per 1K tokens by model name; "default" applies to unknown models.
    price_per_1k_tokens: dict[str, float] = Field(
        default_factory=lambda: {
            "llama-7b": 0.0001,
            "llama-13b": 0.0002,
            "llama-70b": 0.0010,
            "default": 0.0001,
        }
    )


class LoggingSettings(Strict):
    # "info" logs every request; above it, only failed ones (5xx at "error") are logged, so 4xx
    # answers leave no line: a misconfiguration the gate's log check fails.
    level: Literal["info", "warning", "error"] = "info"
    # Logs each request's headers and body (API key and prompt included): a debugging aid that
    # must never reach production; the gate's log check fails it.
    debug_requests: bool = False


class PlantedDefects(Strict):
    """Defects planted for tests only, each to see a gate check fail; never for a real stack."""

    # When the upstream stream breaks off mid-answer, end the client's stream cleanly with
    # neither an error event nor [DONE] (a silent truncation; chaos checks must fail it).
    defect_close_stream_silently: bool = False


class GatewaySettings(Strict):
    auth: AuthSettings = AuthSettings()
    validation: ValidationSettings = ValidationSettings()
    pii: PiiSettings = PiiSettings()
    cache: CacheSettings = CacheSettings()
    rate_limit: RateLimitSettings = RateLimitSettings()
    fallback: FallbackSettings = FallbackSettings()
    breaker: BreakerSettings = BreakerSettings()
    routing: RoutingSettings = RoutingSettings()
    cost: CostSettings = CostSettings()
    logging: LoggingSettings = LoggingSettings()
    planted_defects: PlantedDefects = PlantedDefects()


class GatewayRuntimeConfig(Strict):
    """What one gateway replica needs at start: settings plus the addresses allocated for a run."""

    replica: str
    primary_urls: tuple[str, ...]
    fallback_urls: tuple[str, ...] = ()
    redis_url: str | None = None
    primary_model: str = "primary"
    fallback_model: str = "fallback"
    settings: GatewaySettings = GatewaySettings()
    # The log store's JSON-lines insert URL; the gateway pushes its log lines there too.
    logs_url: str | None = None
