"""The gate profile: which checks a deployment must pass, and the load and SLOs it is judged by."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from harness.spec.base import Strict
from harness.spec.compare import CompareSpec
from harness.spec.load import LoadSpec, Seconds
from harness.spec.policy import Policy


class GateProbes(Strict):
    """Functional probes run before the load (each proves one practice with exact requests)."""

    streaming: bool = True
    security: bool = True
    injection: bool = True
    # Planted PII asked back from the model: placeholders must come back, never the values.
    pii: bool = True
    cache: bool = True
    cost: bool = True
    # Trips each replica's primary breaker and waits out its recovery timeout (60 s by default).
    breaker: bool = True
    monitoring: bool = True
    alert_rule_tests: bool = True
    # The log store: error answers logged with id and reason, no traceback during the load, no
    # API key or planted PII in any line; and the failed requests' lines as evidence.
    logs: bool = True
    # Spends the API key's budget for the current minute, so it runs after load and experiments.
    rate_limit: bool = True


def light_load(
    name: str, *, duration_s: float, max_tokens: int, prompt_words: int, arrival: str
) -> LoadSpec:
    """A short, light open-loop run: gates and experiments run on 2-core CI runners too."""
    return LoadSpec.model_validate(
        {
            "name": name,
            "workload": {"max_tokens": max_tokens, "prompt_words": prompt_words},
            "load": {"kind": "open", "rate_rps": 1.0, "arrival": arrival, "max_send_lag_ms": 250.0},
            "duration_s": duration_s,
            "drain_timeout_s": 30.0,
        }
    )


def _default_load() -> LoadSpec:
    return light_load(
        "gate-smoke-load", duration_s=20.0, max_tokens=24, prompt_words=24, arrival="poisson"
    )


class RegressionSpec(Strict):
    """Comparison of this run's key figures with the median of earlier passing runs."""

    enabled: bool = True
    window: int = Field(7, ge=1)  # the last N passing runs form the baseline
    min_runs: int = Field(3, ge=1)  # fewer earlier runs: the check is skipped
    max_regression_pct: float = Field(20.0, ge=0)
    outcome: Literal["warn", "fail"] = "warn"


class ConfidenceSpec(Strict):
    """How sure a verdict must be. Percentile SLOs, shares and error rates are judged with
    distribution-free confidence bounds; an undecided load step runs on, look after look."""

    # Chance of a wrong pass (and, apart, of a wrong fail) over all looks together.
    level: float = Field(0.95, gt=0.5, lt=1)
    # The load step runs again (another `load.duration_s` each look) while an SLO is undecided,
    # up to this long in all; 0: one look only. (Sized in reports/profiles/default.yaml: at a
    # few hundred requests a p95's upper bound is one of the few largest requests.)
    max_duration_s: Seconds = Field(240.0, ge=0, le=86_400)
    # What an SLO still undecided at the end means for the gate ...
    inconclusive_is: Literal["warn", "fail"] = "fail"
    # ... except these SLOs (as written in `slos`), which only warn (and never keep the load
    # going): a p99 needs about 300 requests for a bound at all, more than a short gate sends;
    # the inter-token tail under overlapping requests is the machine's more than the stack's.
    warn_only: tuple[str, ...] = ("ttft_p99_ms<=7x", "itl_p95_ms<=5x")

    @field_validator("warn_only")
    @classmethod
    def _normalise(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(expr.replace(" ", "") for expr in v)


class GateRollout(Strict):
    """A rollout as the gate's last step: the gate's stack is the candidate, the running version
    is given with `harness gate --baseline`."""

    # Rollout profile file (kind: rollout), relative to this file.
    profile: str


# Checks a profile may name as key: skipped or missing, they make the gate unable to pass.
DEFAULT_KEY_CHECKS = ("candidate's practices meet the policy",)


class GateSpec(Strict):
    kind: Literal["gate"] = "gate"
    name: str = "default"
    # Stack spec file (relative to this file); None: the reference stack.
    stack: str | None = None
    probes: GateProbes = GateProbes()
    load: LoadSpec | None = Field(default_factory=_default_load)
    # Judged against the load run's summary (aggregate) or each request (goodput).
    # Relative to the calibration (`x`), as in reports/profiles/default.yaml, which says why.
    slos: tuple[str, ...] = (
        "ttft_p50_ms<=2.5x",
        "ttft_p95_ms<=5x",
        "ttft_p99_ms<=7x",
        "itl_p50_ms<=2x",
        "itl_p95_ms<=5x",
        "e2e_p95_ms<=5x",
        "error_rate<=0.05",
    )
    regression: RegressionSpec = RegressionSpec()
    # `harness compare` / `harness nightly`: per-request statistics against a baseline run.
    compare: CompareSpec = CompareSpec()
    # The practice values the candidate is judged against (PRACTICES.md by default).
    policy: Policy = Policy()
    confidence: ConfidenceSpec = ConfidenceSpec()
    # Check names (or categories) that must run and pass: skipped, the gate cannot pass.
    key_checks: tuple[str, ...] = DEFAULT_KEY_CHECKS
    # Chaos experiment files (relative to this file) run on the gate's stack after the load.
    experiments: tuple[str, ...] = ()
    # A run whose generator fell behind its schedule is invalid: fail the gate (or only warn).
    invalid_load_is: Literal["fail", "warn"] = "fail"
    # A rollout from the running version to this candidate, after every other step.
    rollout: GateRollout | None = None

    @field_validator("slos")
    @classmethod
    def _slos_parse(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        from harness.spec.slo import is_relative, parse_slo

        for expr in v:
            if not is_relative(expr):  # `ttft_p95_ms<=6x`: relative to the calibration
                parse_slo(expr)
        return v

    def relative_slos(self) -> bool:
        from harness.spec.slo import is_relative

        return any(is_relative(e) for e in self.slos)
