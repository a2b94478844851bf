"""SLOs judged as claims from a sample: each percentile or share gets its sample size, the
estimate and a distribution-free confidence bound, and the decision is pass, fail or inconclusive.

Percentiles use order-statistic (binomial) bounds, shares and error rates Clopper-Pearson bounds
(`confidence.py`). Figures with no such bound (means, maxima, rates per second) are judged on the
estimate and say so. The load step looks at a growing sample several times; `alpha` is the error
rate allowed at this look (the sequential plan splits the overall rate across the looks).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from harness.data.samples import Sample
from harness.measure.summary import LoadSummary
from harness.spec.slo import Slo
from harness.verdict.confidence import Decision, judge_proportion, judge_quantile

_PERCENTILE = re.compile(r"^(?P<dist>[a-z0-9_]+?)_p(?P<q>\d{2})_ms$")


@dataclass(frozen=True)
class SloJudgement:
    expr: str
    decision: Decision
    reason: str
    n: int
    estimate: float | None
    lower: float | None = None
    upper: float | None = None
    samples_needed: int | None = None


def _from_intended(s: Sample, value: float | None) -> float | None:
    lag = s.send_lag_ms or 0.0  # None in closed loop: no intended time
    return None if value is None else value + lag


# Per-request values behind each latency distribution the summary reports.
_VALUES: dict[str, Callable[[Sample], Sequence[float | None]]] = {
    "ttft": lambda s: [s.ttft_ms],
    "e2e": lambda s: [s.e2e_ms],
    "tpot": lambda s: [s.tpot_ms],
    "itl": lambda s: [s.itl_ms],
    "token_gap": lambda s: s.token_gaps_ms,
    "ttft_from_intended": lambda s: [_from_intended(s, s.ttft_ms)],
    "e2e_from_intended": lambda s: [_from_intended(s, s.e2e_ms)],
}


def distribution_values(dist: str, samples: Sequence[Sample]) -> list[float] | None:
    """Every value of a distribution over the successful requests; None: not a per-request one."""
    get = _VALUES.get(dist)
    if get is None:
        return None
    return [v for s in samples if s.ok for v in get(s) if v is not None]


def proportion(name: str, summary: LoadSummary) -> tuple[int, int] | None:
    """(successes, n) behind a share or rate the summary reports; None: not a proportion."""
    served = summary.served.counts
    answered = sum(served.values())
    shares = {
        "primary_share": "primary",
        "fallback_share": "fallback",
        "cache_share": "cache",
        "degraded_share": "degraded",
    }
    if name == "error_rate":
        return summary.counts.errors, summary.counts.total
    if name in shares:
        return served.get(shares[name], 0), answered
    if name == "incomplete_share":
        return summary.counts.incomplete, summary.counts.total
    if name == "rate_limited_share":
        return summary.counts.by_status.get("429", 0), summary.counts.total
    if name == "goodput":
        return summary.goodput.meeting, summary.counts.total
    if name == "cache_hit_rate":
        return summary.cache.hits, summary.cache.hits + summary.cache.misses
    return None


def judge_share(slo: Slo, summary: LoadSummary, alpha: float) -> SloJudgement | None:
    """A share or rate SLO with Clopper-Pearson bounds; None when the metric is not one."""
    prop = proportion(slo.metric, summary)
    if prop is None:
        return None
    k, n = prop
    j = judge_proportion(k, n, slo.op, slo.threshold, alpha, label=slo.metric)  # type: ignore[arg-type]
    return SloJudgement(
        slo.expr,
        j.decision,
        j.reason,
        j.interval.n,
        j.interval.estimate,
        j.interval.lower,
        j.interval.upper,
        j.samples_needed,
    )


def judge_slo(
    slo: Slo, samples: Sequence[Sample], summary: LoadSummary, alpha: float
) -> SloJudgement:
    """One aggregate SLO against the pooled samples of the load step."""
    m = _PERCENTILE.match(slo.metric)
    if m:
        values = distribution_values(m.group("dist"), samples)
        if values is not None:
            q = int(m.group("q")) / 100
            j = judge_quantile(values, q, slo.op, slo.threshold, alpha)  # type: ignore[arg-type]
            return SloJudgement(
                slo.expr,
                j.decision,
                f"{slo.metric}: {j.reason}",
                j.interval.n,
                j.interval.estimate,
                j.interval.lower,
                j.interval.upper,
                j.samples_needed,
            )
    share = judge_share(slo, summary, alpha)
    if share is not None:
        return share
    return judge_estimate(slo, summary)


def judge_estimate(slo: Slo, summary: LoadSummary) -> SloJudgement:
    """A figure judged on its estimate alone (a mean, a maximum, a rate per second, or any figure
    where the caller wants no bound): inconclusive only when it was not measured."""
    observed = summary.metric(slo.metric)
    n = summary.counts.total
    if observed is None:
        return SloJudgement(
            slo.expr, "inconclusive", f"{slo.metric} was not measured (no samples)", n, None
        )
    ok = slo.holds(observed)
    return SloJudgement(
        slo.expr,
        "pass" if ok else "fail",
        f"{slo.metric} = {observed:.4g} {'meets' if ok else 'violates'} {slo.op} "
        f"{slo.threshold:g} (n={n}; a point estimate, no confidence bound for this figure)",
        n,
        observed,
    )
