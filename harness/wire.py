"""The names a gateway uses on the wire: how the API key is sent, the response headers that say
who served an answer, whether the cache did, and the request's id; the metric names the checks
read from its /metrics; and how it answers each error the probes provoke.

The reference gateway's names by default (docs/gateway.md, "The gateway contract"); an
external stack's spec may name others or mark an item absent (`external.auth_header`,
`external.auth_scheme`, `external.gateway`). One stack is gated per harness process, so the
active names are process-wide: the pipeline sets them for an external stack, and the load's
workers receive them in their configuration.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from pydantic import BaseModel, ConfigDict, Field

# The gateway metrics the checks read, by their reference names (stack/gateway/README.md), with
# the checks that read them. A histogram is named by its family; its series (`_bucket`, ...)
# follow the family's mapping.
METRICS: dict[str, str] = {
    "llm_requests_total": "metrics and alert rules",
    "llm_request_duration_seconds": "metrics and alert rules",
    "llm_active_requests": "metrics and alert rules",
    "llm_tokens_generated_total": "metrics and alert rules, cost accounting",
    "llm_cache_hits_total": "metrics and alert rules",
    "llm_memory_used_bytes": "metrics and alert rules",
    "llm_prompt_tokens_total": "cost accounting",
    "llm_cost_usd_total": "cost accounting",
    "llm_prompt_injection_detected_total": "prompt-injection flagging",
    "llm_circuit_breaker_state": "circuit breaker opens and recovers",
    # Figures of the load report's server view, beside the client's exact ones (not judged).
    "llm_time_to_first_token_seconds": "the load report's server view",
    "llm_gateway_overhead_seconds": "the load report's server view",
    "llm_cache_misses_total": "the load report's server view",
    "llm_pii_filter_hold_seconds": "the load report's server view",
}
HISTOGRAM_SERIES = ("_bucket", "_sum", "_count")


class ErrorAnswer(BaseModel):
    """How a gateway answers one error: any of `status`, and the error body's `code` when set
    (checked only then); the body is always JSON."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    status: tuple[int, ...]
    code: str | None = None

    def describe(self) -> str:
        codes = " or ".join(map(str, self.status))
        return f"{codes} code {self.code!r}" if self.code else codes


# The errors the probes provoke, with the reference gateway's answers (and the checks).
ERRORS: dict[str, tuple[ErrorAnswer, str]] = {
    "missing_key": (ErrorAnswer(status=(401,)), "authentication and input validation"),
    "unknown_key": (ErrorAnswer(status=(403,)), "authentication and input validation"),
    "oversized_key": (
        ErrorAnswer(status=(400, 401, 403, 431)),
        "authentication and input validation",
    ),
    "oversized_prompt": (ErrorAnswer(status=(400, 413)), "authentication and input validation"),
    "malformed_json": (ErrorAnswer(status=(400, 422)), "authentication and input validation"),
    "wrong_method": (ErrorAnswer(status=(404, 405)), "authentication and input validation"),
    "unknown_path": (ErrorAnswer(status=(404,)), "authentication and input validation"),
    "rate_limited": (ErrorAnswer(status=(429,)), "rate limit per API key (with Retry-After)"),
    "prompt_injection": (
        ErrorAnswer(status=(400,), code="prompt_injection_detected"),
        "prompt-injection flagging (policy reject)",
    ),
}


def family(name: str) -> str | None:
    """The METRICS entry a series name belongs to (None: a name the contract does not map)."""
    if name in METRICS:
        return name
    for suffix in HISTOGRAM_SERIES:
        if name.endswith(suffix) and name.removesuffix(suffix) in METRICS:
            return name.removesuffix(suffix)
    return None


class Wire(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    auth_header: str = "Authorization"
    auth_scheme: str = "Bearer"  # "" sends the bare key
    served_by: str = "X-Served-By"
    cache: str = "X-Cache"
    request_id: str = "X-Request-Id"
    # Which version of a rollout answered (baseline or candidate): the split front sets it; an
    # external deployment's own router may name it otherwise.
    version: str = "X-Served-Version"
    # Reference metric name -> the deployment's (None: absent); names not listed are as is.
    metrics: dict[str, str | None] = Field(default_factory=dict)
    # Error item -> the deployment's answer (None: absent); items not listed as ERRORS says.
    errors: dict[str, ErrorAnswer | None] = Field(default_factory=dict)

    def auth(self, api_key: str | None) -> dict[str, str]:
        if not api_key:
            return {}
        return {self.auth_header: f"{self.auth_scheme} {api_key}" if self.auth_scheme else api_key}

    def metric(self, name: str) -> str | None:
        """The deployment's name for the series `name` (reference name), None when absent."""
        fam = family(name)
        if fam is None or fam not in self.metrics:
            return name
        mapped = self.metrics[fam]
        return None if mapped is None else mapped + name.removeprefix(fam)

    def error(self, item: str) -> ErrorAnswer | None:
        """The deployment's answer to the error `item` (a key of ERRORS), None when absent."""
        return self.errors[item] if item in self.errors else ERRORS[item][0]

    def expected_error(self, item: str) -> ErrorAnswer:
        """As `error`, for a probe that provokes it: an absent item is the caller's mistake (the
        gate skips such checks before they run)."""
        answer = self.error(item)
        if answer is None:
            raise LookupError(f"the gateway contract marks error `{item}` absent")
        return answer

    def expected_metric(self, name: str) -> str:
        """As `metric`, for a probe that reads it (absent: as `expected_error`)."""
        mapped = self.metric(name)
        if mapped is None:
            raise LookupError(f"the gateway contract marks metric `{family(name)}` absent")
        return mapped


_current = Wire()


def current() -> Wire:
    return _current


def set_current(wire: Wire) -> None:
    global _current
    _current = wire


@contextlib.contextmanager
def using(wire: Wire) -> Iterator[Wire]:
    before = current()
    set_current(wire)
    try:
        yield wire
    finally:
        set_current(before)
