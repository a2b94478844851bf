"""A rollout judged: each canary look (promote, hold or abort), and each traffic move's requests.

A canary step compares the candidate with the baseline on the requests of that same window, per
figure: the TTFT median and p95, the median inter-token latency and the median end-to-end time as
relative changes; the error rate and the fallback share as differences in percentage points. Each
figure's interval is one-sided at the look's alpha (`SequentialPlan`: alpha spending over the
step's looks, so looking again and again keeps the profile's alpha per figure):
- latency: the relative change of the statistic with its bootstrap standard error (each version
  resampled on its own, by the second its requests were sent in: requests of one moment share
  its stalls, so they are not independent; at least 10 such seconds per version), bounds
  est -/+ z * se, z the normal's quantile at the look's alpha; the normal form holds at the tiny
  alphas of early looks, where percentile bounds cannot reach;
- rates: Newcombe's hybrid score interval (`verdict.rates.newcombe_interval`) at the same level.

A figure is "no worse" when its bad end is inside the margin (non-inferiority shown), "worse"
when its good end is beyond it (shown worse than the margin allows), else "undecided". The step
promotes when every figure is no worse, aborts when any is worse, holds otherwise, and aborts at
its last look when a figure is still undecided: a rollout never promotes without evidence.

A profile that judges gross failures alone (`analysis.judge: gross_failures`, for a stack whose
steps carry a few requests: llama.cpp on CPU) decides on the error rate and the fallback share;
the latency figures are still measured and reported, with how many candidate requests would
decide them and how long that takes at the step's pace, but hold and abort nothing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict
from scipy import special

from harness.data.samples import Sample
from harness.measure.fates import FATES, FateCounts, fate
from harness.measure.stats import percentile
from harness.spec.rollout import Analysis, Switch
from harness.verdict.checks import CheckResult
from harness.verdict.rates import Count, newcombe_interval
from harness.verdict.sequential import SequentialPlan
from harness.verdict.steady_state import FrontDoorAnswer

Values = NDArray[np.float64]
Verdict = Literal["no_worse", "worse", "undecided"]
Decision = Literal["promote", "hold", "abort"]
MIN_VALUES = 10  # per version, values and seconds: below this a latency figure has no interval
# Requests sent in the same second share that moment's stalls (a descheduled gateway, a collection
# pause): they are one cluster, and a latency figure's bootstrap resamples whole clusters.
CLUSTER_S = 1.0
_MAX_NEEDED = 10_000_000
# Fates that fail a request at a traffic move (completed and failed_over do not).
BAD_FATES = tuple(f for f in FATES if f not in ("completed", "failed_over"))

# Latency figures: (name, the Sample's value, quantile, the margin's field).
LATENCY = (
    ("ttft_p50", "ttft_ms", 0.5),
    ("ttft_p95", "ttft_ms", 0.95),
    ("itl_p50", "itl_ms", 0.5),
    ("e2e_p50", "e2e_ms", 0.5),
)
RATES = ("error_rate", "fallback_share")
# The figures a gross failure shows in: requests failed, cut, hung or refused, or answered by the
# fallback pool instead of the candidate's model (a candidate that does not answer).
GROSS = RATES


class FigureLook(BaseModel):
    """One figure of one look: the candidate against the baseline, and what that shows."""

    model_config = ConfigDict(extra="ignore")
    name: str
    unit: Literal["relative", "pp"]
    baseline: float | None
    candidate: float | None
    n_baseline: int
    n_candidate: int
    effect: float | None  # relative change, or pp
    low: float | None
    high: float | None
    margin: float
    verdict: Verdict
    reason: str
    # Undecided: about how many candidate requests (the baseline's growing alike) would decide at
    # this look's alpha, were the effect to stay as measured (None: decided, or not estimable).
    needed_candidate: int | None = None
    # False: reported, not judged (the profile judges gross failures only): it decides nothing.
    judged: bool = True


class StepLook(BaseModel):
    model_config = ConfigDict(extra="ignore")
    share: float
    look: int
    max_looks: int
    alpha: float  # one-sided, this look's
    t_s: float  # seconds since the rollout's load started
    n_baseline: int
    n_candidate: int
    decision: Decision
    figures: list[FigureLook]
    reasons: list[str]
    # Seconds of the step's window this look covered (its pace: n_candidate / window_s).
    window_s: float | None = None
    # The figures reported but not judged, each with what would decide it.
    notes: list[str] = []


def _is_error(s: Sample) -> bool:
    return fate(s) in BAD_FATES


def _is_fallback(s: Sample) -> bool:
    return fate(s) == "failed_over"


def _values(samples: Sequence[Sample], attr: str) -> tuple[Values, NDArray[np.int64]]:
    """A figure's values, and the second each request was sent in (its cluster)."""
    kept = [(v, s.sent_s) for s in samples if s.ok and (v := getattr(s, attr)) is not None]
    vals = np.asarray([v for v, _ in kept], dtype=float)
    seconds = np.floor(np.asarray([t for _, t in kept], dtype=float) / CLUSTER_S)
    return vals, np.unique(seconds, return_inverse=True)[1].astype(np.int64)


@dataclass(frozen=True)
class _Clustered:
    """One version's values sorted, with each value's cluster: a resample draws whole clusters
    (seconds) with replacement, and its quantile weighs each value by its cluster's draws."""

    values: Values
    cluster: NDArray[np.int64]
    clusters: int

    @classmethod
    def of(cls, values: Values, cluster: NDArray[np.int64]) -> _Clustered:
        order = np.argsort(values, kind="stable")
        return cls(values[order], cluster[order], int(cluster.max()) + 1 if cluster.size else 0)

    def quantile(self, drawn: NDArray[np.int64], q: float) -> Values:
        """The q-quantile (inverted CDF) of each row of `drawn`, resampled cluster indices."""
        rows = drawn.reshape(-1, drawn.shape[-1]).astype(np.int64)
        flat = rows + self.clusters * np.arange(len(rows))[:, None]
        counts = np.bincount(flat.ravel(), minlength=len(rows) * self.clusters)
        cum = np.cumsum(counts.reshape(len(rows), self.clusters)[:, self.cluster], axis=1)
        pos = np.minimum((cum < q * cum[:, -1:]).sum(axis=1), len(self.values) - 1)
        return np.asarray(self.values[pos].reshape(drawn.shape[:-1]), dtype=float)


def _quantile_change_se(a: _Clustered, b: _Clustered, q: float, resamples: int, seed: int) -> float:
    """Bootstrap standard error of (q-quantile of b - that of a) / that of a, each version's
    clusters resampled on their own (not finite where resampled quantiles of a are 0)."""
    from scipy import stats  # half a second to import: only where versions are compared

    def ratio(x: NDArray[np.int64], y: NDArray[np.int64], axis: int = -1) -> Values:
        qx = a.quantile(x, q)
        return np.asarray((b.quantile(y, q) - qx) / qx)

    # A resampled quantile of 0 gives inf or nan: the caller reads the standard error it makes.
    with np.errstate(divide="ignore", invalid="ignore"):
        res = stats.bootstrap(
            (np.arange(a.clusters), np.arange(b.clusters)),
            ratio,
            n_resamples=resamples,
            method="percentile",
            vectorized=True,
            batch=100,
            rng=np.random.default_rng(seed),
        )
        return float(res.standard_error)


def _verdict(low: float, high: float, margin: float) -> Verdict:
    if high <= margin:
        return "no_worse"
    if low > margin:
        return "worse"
    return "undecided"


def _latency_look(
    name: str,
    attr: str,
    q: float,
    base: Sequence[Sample],
    cand: Sequence[Sample],
    margin: float,
    z: float,
    resamples: int,
    seed: int,
) -> FigureLook:
    (a, a_sec), (b, b_sec) = _values(base, attr), _values(cand, attr)
    ca, cb = _Clustered.of(a, a_sec), _Clustered.of(b, b_sec)
    qa = float(np.quantile(a, q)) if a.size else None
    qb = float(np.quantile(b, q)) if b.size else None
    common = {"name": name, "unit": "relative", "baseline": qa, "candidate": qb, "margin": margin}
    counts = {"n_baseline": int(a.size), "n_candidate": int(b.size)}
    if min(a.size, b.size) < MIN_VALUES or not qa:
        return FigureLook(
            **common,
            **counts,
            effect=None,
            low=None,
            high=None,
            verdict="undecided",
            reason=f"{name}: {min(a.size, b.size)} values in the smaller version, at least "
            f"{MIN_VALUES} are needed",
        )
    if min(ca.clusters, cb.clusters) < MIN_VALUES:
        return FigureLook(
            **common,
            **counts,
            effect=(qb - qa) / qa if qb is not None else None,
            low=None,
            high=None,
            verdict="undecided",
            needed_candidate=math.ceil(b.size * MIN_VALUES / min(ca.clusters, cb.clusters)),
            reason=f"{name}: the smaller version's requests were sent in "
            f"{min(ca.clusters, cb.clusters)} distinct seconds, at least {MIN_VALUES} are needed "
            "(requests of the same second share its stalls: a second counts once)",
        )
    assert qb is not None
    est = (qb - qa) / qa
    se = _quantile_change_se(ca, cb, q, resamples, seed)
    if not math.isfinite(se):
        # Some resampled baselines have this quantile at 0 (many values of 0: tokens that
        # came in one read): a relative change has no interval.
        zeros = int((a == 0).sum())
        return FigureLook(
            **common,
            **counts,
            effect=est,
            low=None,
            high=None,
            verdict="undecided",
            reason=f"{name} {qa:.1f} -> {qb:.1f} ms ({est:+.1%}): no interval, {zeros} of "
            f"{a.size} baseline values are 0, so resampled baselines have this quantile at 0",
        )
    low, high = est - z * se, est + z * se
    verdict = _verdict(low, high, margin)
    needed = None
    if verdict == "undecided" and est != margin:
        # Each side of the interval shrinks as 1/sqrt(n); 10% more for the estimate's own drift.
        ratio = (high - est) / (margin - est) if est < margin else (est - low) / (est - margin)
        needed = min(_MAX_NEEDED, math.ceil(b.size * ratio**2 * 1.1))
    return FigureLook(
        **common,
        **counts,
        effect=est,
        low=low,
        high=high,
        verdict=verdict,
        needed_candidate=needed,
        reason=f"{name} {qa:.1f} -> {qb:.1f} ms ({est:+.1%}, bounds {low:+.1%} .. {high:+.1%}), "
        f"margin +{margin:.0%}: {verdict.replace('_', ' ')}" + _needs(needed, b.size),
    )


def _needs(needed: int | None, n: int) -> str:
    if needed is None:
        return ""
    return f", about {needed} candidate requests would decide ({n} so far)"


def _rate_needed(a: Count, b: Count, margin_pp: float, alpha: float) -> int | None:
    """Candidate requests that would decide a rate figure, both versions growing alike and their
    rates staying as measured; searched (near 0% the interval narrows faster than 1/sqrt(n))."""

    def decides(factor: float) -> bool:
        na, nb = max(1, round(a.n * factor)), max(1, round(b.n * factor))
        ka, kb = round(a.k / a.n * na), round(b.k / b.n * nb)
        low, high = (
            100 * x for x in newcombe_interval(Count(ka, na), Count(kb, nb), 1 - 2 * alpha)
        )
        return _verdict(low, high, margin_pp) != "undecided"

    lo, hi = 1.0, 2.0
    while not decides(hi):
        if b.n * hi >= _MAX_NEEDED:
            return None
        lo, hi = hi, hi * 2
    while hi - lo > 0.05 * lo:
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if decides(mid) else (mid, hi)
    return math.ceil(b.n * hi)


def _rate_look(
    name: str, base: Sequence[Sample], cand: Sequence[Sample], margin_pp: float, alpha: float
) -> FigureLook:
    hit = _is_error if name == "error_rate" else _is_fallback
    a = Count(sum(map(hit, base)), len(base))
    b = Count(sum(map(hit, cand)), len(cand))
    common = {"name": name, "unit": "pp", "margin": margin_pp}
    counts = {"n_baseline": a.n, "n_candidate": b.n}
    if not a.n or not b.n:
        return FigureLook(
            **common,
            **counts,
            baseline=None,
            candidate=None,
            effect=None,
            low=None,
            high=None,
            verdict="undecided",
            reason=f"{name}: no requests of one version yet",
        )
    low, high = (100 * x for x in newcombe_interval(a, b, level=1 - 2 * alpha))
    diff = 100 * (b.k / b.n - a.k / a.n)
    verdict = _verdict(low, high, margin_pp)
    needed = _rate_needed(a, b, margin_pp, alpha) if verdict == "undecided" else None
    return FigureLook(
        **common,
        **counts,
        baseline=a.k / a.n,
        candidate=b.k / b.n,
        effect=diff,
        low=low,
        high=high,
        verdict=verdict,
        needed_candidate=needed,
        reason=f"{name} {a.k}/{a.n} -> {b.k}/{b.n} ({diff:+.2f} pp, bounds {low:+.2f} .. "
        f"{high:+.2f} pp), margin +{margin_pp:g} pp: {verdict.replace('_', ' ')}"
        + _needs(needed, b.n),
    )


def _pace(f: FigureLook, window_s: float | None) -> str:
    """How long the candidate requests that would decide an undecided figure take at the step's
    pace ("" where not estimable)."""
    if f.needed_candidate is None or not window_s or not f.n_candidate:
        return ""
    rate = f.n_candidate / window_s
    wait_s = max(0, f.needed_candidate - f.n_candidate) / rate
    return f" ({_duration(wait_s)} more at this step's {rate:.2g} candidate requests/s)"


def _duration(s: float) -> str:
    if s < 120:
        return f"{s:.0f} s"
    return f"{s / 60:.0f} min" if s < 7200 else f"{s / 3600:.1f} h"


def look_at_step(
    share: float,
    look: int,
    t_s: float,
    base: Sequence[Sample],
    cand: Sequence[Sample],
    analysis: Analysis,
    seed: int = 0,
    window_s: float | None = None,
) -> StepLook:
    """Look `look` (1-based) at one canary step's window: each figure, then the decision. Under
    `analysis.judge: gross_failures` only the error rate and the fallback share decide; the
    latency figures come back unjudged, with what would decide them (`notes`)."""
    plan = SequentialPlan(alpha=analysis.alpha, max_looks=analysis.max_looks)
    alpha = plan.alpha_at(look)
    z = -float(special.ndtri(alpha))  # the normal's one-sided quantile
    m = analysis.margins
    margins = {"ttft_p50": m.ttft_p50, "ttft_p95": m.ttft_p95, "itl_p50": m.itl_p50}
    margins["e2e_p50"] = m.e2e_p50
    figures = [
        _latency_look(name, attr, q, base, cand, margins[name], z, analysis.resamples, seed)
        for name, attr, q in LATENCY
    ]
    figures.append(_rate_look("error_rate", base, cand, m.error_rate_pp, alpha))
    figures.append(_rate_look("fallback_share", base, cand, m.fallback_share_pp, alpha))
    if analysis.judge == "gross_failures":
        figures = [
            f if f.name in GROSS else f.model_copy(update={"judged": False}) for f in figures
        ]
    notes = [f"not judged: {f.reason}{_pace(f, window_s)}" for f in figures if not f.judged]
    worse = [f for f in figures if f.judged and f.verdict == "worse"]
    undecided = [f for f in figures if f.judged and f.verdict == "undecided"]
    last = look >= analysis.max_looks
    if worse:
        decision: Decision = "abort"
        reasons = [f"shown worse than its margin: {f.reason}" for f in worse]
    elif not undecided:
        decision = "promote"
        reasons = [
            "every figure shown no worse than its margin"
            if not notes
            else f"every judged figure ({', '.join(GROSS)}) shown no worse than its margin"
        ]
    elif last:
        decision = "abort"
        reasons = [
            f"still undecided at the step's last look ({look} of {analysis.max_looks}): {f.reason}"
            for f in undecided
        ]
    else:
        decision = "hold"
        reasons = [f"undecided: {f.reason}" for f in undecided]
    return StepLook(
        share=share,
        look=look,
        max_looks=analysis.max_looks,
        alpha=alpha,
        t_s=round(t_s, 2),
        n_baseline=len(base),
        n_candidate=len(cand),
        decision=decision,
        figures=figures,
        reasons=reasons,
        window_s=None if window_s is None else round(window_s, 2),
        notes=notes,
    )


def _what_decides(f: FigureLook, window_s: float | None) -> str:
    """An undecided figure: the candidate requests that would decide it, and how long they take."""
    if f.needed_candidate is None:
        return f.reason
    return f"{f.name} about {f.needed_candidate} candidate requests" + _pace(f, window_s)


def _finer_effects(decided: Sequence[StepLook]) -> list[str]:
    """What a gross-failures canary did not judge, per step: the latency figures more traffic
    would decide (and how much), and any shown worse than its margin all the same."""
    out = []
    for lk in decided:
        open_ = [f for f in lk.figures if not f.judged and f.verdict == "undecided"]
        worse = [f for f in lk.figures if not f.judged and f.verdict == "worse"]
        if open_:
            needs = "; ".join(_what_decides(f, lk.window_s) for f in open_)
            out.append(
                f"{lk.share:.0%}: finer effects need more traffic than this step carried "
                f"({lk.n_candidate} candidate requests; not judged, analysis.judge: "
                f"gross_failures): {needs}"
            )
        out += [
            f"{lk.share:.0%}: shown worse than its margin, not judged (analysis.judge: "
            f"gross_failures): {f.reason}"
            for f in worse
        ]
    return out


def canary_check(
    looks: Sequence[StepLook],
    steps: Sequence[float],
    promoted: bool,
    failed_move: str | None = None,
) -> CheckResult:
    """The canary's verdict: promoted through every step below 100%, or why not (a look that
    aborted it, or `failed_move`: a move that could not be made)."""
    decided = [lk for lk in looks if lk.decision != "hold"]
    unjudged = [f for lk in decided for f in lk.figures if not f.judged]
    needed = [f.needed_candidate for f in unjudged if f.needed_candidate is not None]
    measured: dict[str, float | int | str | None] = {
        "steps_promoted": sum(1 for lk in decided if lk.decision == "promote"),
        "steps_analysed": len([s for s in steps if s < 1]),
        "looks": len(looks),
        "judged": "gross failures" if unjudged else "every figure",
        "latency_needed_candidate": max(needed, default=None),
    }
    if promoted:
        return CheckResult(
            name="canary: candidate no worse than the baseline at every step",
            category="rollout",
            outcome="pass",
            reasons=[
                f"{lk.share:.0%}: promoted at look {lk.look} of {lk.max_looks} "
                f"({lk.n_baseline} baseline, {lk.n_candidate} candidate requests)"
                for lk in decided
            ]
            + _finer_effects(decided),
            measured=measured,
        )
    stop = decided[-1] if decided else (looks[-1] if looks else None)
    if failed_move is not None:
        reasons = [f"aborted: {failed_move}"]
    elif stop is not None:
        reasons = [
            f"aborted at {stop.share:.0%}, look {stop.look} of {stop.max_looks}: {r}"
            for r in stop.reasons
        ]
    else:
        reasons = ["the canary ended before its first look"]
    return CheckResult(
        name="canary: candidate no worse than the baseline at every step",
        category="rollout",
        outcome="fail",
        reasons=reasons,
        measured=measured,
    )


@dataclass(frozen=True)
class Move:
    """One traffic move (a share changed, a replica replaced), on the samples' clock."""

    title: str  # the check's name
    at_s: float
    # The version that should answer requests sent after the move settled (None: either).
    expect_version: str | None
    # A move that takes a while (a replica out, replaced and back): when it ended.
    until_s: float | None = None
    # Seconds the version or replica taken out of traffic took to finish its in-flight requests
    # (None: not measured), and whether it finished within the drain bound.
    drain_s: float | None = None
    drained: bool | None = None
    # The candidate's share before and after (None: the move does not change it).
    share_from: float | None = None
    share_to: float | None = None
    # More figures the check reports (a replica's cold start, ...), and what went wrong beyond
    # the requests (a new replica never ready, ...).
    figures: dict[str, float | None] = field(default_factory=dict)
    problems: tuple[str, ...] = ()


def move_requests(samples: Sequence[Sample], move: Move, settle_s: float) -> list[Sample]:
    """A move's requests: in flight at its start, or sent from then until `settle_s` after it
    ended."""
    end = (move.until_s if move.until_s is not None else move.at_s) + settle_s
    return [s for s in samples if s.sent_s < move.at_s < s.done_s or move.at_s <= s.sent_s < end]


def move_check(
    move: Move, around: Sequence[Sample], after: Sequence[Sample], switch: Switch
) -> CheckResult:
    """What a move cost: no request failed, cut or hung among those around it; their TTFT p95
    within the switch SLO; after it settled, every answer from the version it moved to; the
    version taken out drained within its bound."""
    counts = FateCounts()
    for s in sorted(around, key=lambda x: x.sent_s):
        counts.add(s)
    failures: list[str] = list(move.problems)
    bad = {f: counts.counts.get(f, 0) for f in BAD_FATES if counts.counts.get(f, 0)}
    if bad:
        ids = "; ".join(f"{f}: {', '.join(counts.ids.get(f, []))}" for f in bad)
        failures.append(
            f"{sum(bad.values())} of {counts.requests} requests around the move failed "
            f"({', '.join(f'{k} {v}' for k, v in bad.items())}), e.g. {ids}"
        )
    if not counts.requests:
        failures.append("no request was in flight at the move or sent while it settled")
    ttft = [s.ttft_ms for s in around if s.ttft_ms is not None]
    p95 = percentile(ttft, 95)
    if p95 is not None and p95 > switch.ttft_p95_ms:
        failures.append(
            f"TTFT p95 of the move's requests {p95:.0f} ms > {switch.ttft_p95_ms:g} ms "
            f"(n={len(ttft)})"
        )
    wrong = 0
    if move.expect_version is not None:
        wrong = sum(1 for s in after if s.x_version != move.expect_version)
        if not after:
            failures.append(
                f"no request after the move settled to show it served {move.expect_version}"
            )
        elif wrong:
            failures.append(
                f"{wrong} of {len(after)} requests after the move settled not served by "
                f"{move.expect_version}"
            )
    if move.drained is False:
        failures.append(
            f"what was taken out of traffic still had requests in flight after "
            f"{switch.drain_timeout_s:g}s (the drain bound)"
        )
    measured: dict[str, float | int | str | None] = {
        **move.figures,
        "requests": counts.requests,
        **{f: counts.counts.get(f, 0) for f in FATES},
        "ttft_p95_ms": None if p95 is None else round(p95, 1),
        "ttft_n": len(ttft),
        "after_requests": len(after),
        "after_wrong_version": wrong,
        "drain_s": None if move.drain_s is None else round(move.drain_s, 2),
    }
    note = (
        f"{counts.requests} requests around the move, none failed, cut or hung; TTFT p95 "
        + (f"{p95:.0f} ms" if p95 is not None else "n/a")
        + (
            f"; {len(after)} after it, all served by {move.expect_version}"
            if move.expect_version
            else ""
        )
        + (f"; drained in {move.drain_s:.1f}s" if move.drain_s is not None else "")
    )
    return CheckResult.from_reasons(
        move.title,
        "rollout",
        failures,
        measured,
        passed_note=note,
    )


@dataclass(frozen=True)
class SignalPoint:
    """The autoscaler's signal at one read (the samples' clock)."""

    t_s: float
    per_replica_rps: float | None
    replicas: int


@dataclass(frozen=True)
class ScaleEvent:
    """A replica added ("out") or removed ("in"), each step's time on the samples' clock."""

    kind: Literal["out", "in"]
    replica: str
    replicas_after: int
    decided_s: float
    started_s: float
    crossed_s: float | None = None
    ready_s: float | None = None
    in_rotation_s: float | None = None
    serving_s: float | None = None


def _after(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else round(a - b, 2)


def scale_out_check(
    signal: Sequence[SignalPoint],
    events: Sequence[ScaleEvent],
    target: float | None,
    serve_within_s: float,
    basis: str | None = None,
) -> CheckResult:
    """A burst above the target adds a replica, and the replica serves: each step's time.
    `basis`: where a target not the profile's own came from (one replica's capacity); a target
    that could not be derived (None) fails, with that basis as its reason."""
    name = "scale-out: a replica added and serving when the signal crossed the target"
    peak = max((p.per_replica_rps for p in signal if p.per_replica_rps is not None), default=None)
    outs = [e for e in events if e.kind == "out"]
    measured: dict[str, float | int | str | None] = {
        "target_rps_per_replica": None if target is None else round(target, 3),
        "target_from": "profile" if basis is None else "capacity",
        "peak_rps_per_replica": None if peak is None else round(peak, 2),
        "replicas_max": max((p.replicas for p in signal), default=0),
        "scale_outs": len(outs),
    }
    if target is None:
        return CheckResult.from_reasons(name, "rollout", [basis or "no target"], measured)
    if outs:
        first = outs[0]
        measured |= {
            "decision_after_crossing_s": _after(first.decided_s, first.crossed_s),
            "ready_after_decision_s": _after(first.ready_s, first.decided_s),
            "in_rotation_after_decision_s": _after(first.in_rotation_s, first.decided_s),
            "serving_after_decision_s": _after(first.serving_s, first.decided_s),
        }
    failures: list[str] = []
    if peak is None or peak <= target:
        failures.append(
            f"the signal never crossed the target of {target:g} requests/s per replica (peak "
            f"{'none read' if peak is None else f'{peak:.1f}'}): the burst did not test scaling"
        )
    elif not outs:
        failures.append("the signal crossed the target, and no replica was added")
    for e in outs:
        if e.ready_s is None:
            failures.append(f"{e.replica} never answered a first token")
        elif e.serving_s is None:
            where = "in rotation" if e.in_rotation_s is not None else "never put in rotation"
            failures.append(
                f"{e.replica} ({where}) served no request within {serve_within_s:g}s of the "
                "decision"
            )
    note = ""
    if outs and not failures:
        f = outs[0]
        crossed = _after(f.decided_s, f.crossed_s)
        note = (
            f"{len(outs)} replica(s) added; the first decided "
            + (
                "with no reading above the target seen before it"
                if crossed is None
                else f"{crossed}s after the signal crossed"
            )
            + f", ready {_after(f.ready_s, f.decided_s)}s after the decision, serving after "
            f"{_after(f.serving_s, f.decided_s)}s"
        )
    if basis is not None:  # where the target came from goes with the outcome, either way
        note = f"{note}; {basis}"
        failures += [basis] if failures else []
    return CheckResult.from_reasons(name, "rollout", failures, measured, passed_note=note)


def burst_slo_check(
    seconds: Sequence[tuple[float, float | None]],
    events: Sequence[ScaleEvent],
    burst: tuple[float, float],
    ttft_p95_ms: float,
    recover_within_s: float,
) -> CheckResult:
    """The burst's SLO (TTFT p95 per second of requests meant for it) holds again within
    `recover_within_s` of the last replica added during the burst serving, to the burst's end.
    `seconds`: each second's start (the samples' clock) and its TTFT p95."""
    name = f"scale-out: TTFT p95 <= {ttft_p95_ms:g} ms again within {recover_within_s:g}s"
    start, end = burst
    over = [t for t, p95 in seconds if start <= t < end and p95 is not None and p95 > ttft_p95_ms]
    # Recovery counts from the last replica the burst added that served: the capacity it needed.
    served = [e.serving_s for e in events if e.kind == "out" and e.serving_s and e.serving_s < end]
    serving = max(served, default=None)
    measured: dict[str, float | int | str | None] = {
        "slo_violated_s": len(over),
        "burst_s": round(end - start, 1),
    }
    if serving is None:
        return CheckResult(
            name=name,
            category="rollout",
            outcome="fail",
            reasons=[
                f"no added replica served: the SLO was over in {len(over)} of the burst's "
                f"{end - start:.0f} seconds, with nothing done about it"
            ],
            measured=measured,
        )
    late = [t for t in over if t >= serving + recover_within_s]
    measured["violated_after_recovery_s"] = len(late)
    failures = (
        [
            f"TTFT p95 over {ttft_p95_ms:g} ms in {len(late)} seconds more than "
            f"{recover_within_s:g}s after the last added replica served"
        ]
        if late
        else []
    )
    return CheckResult.from_reasons(
        name,
        "rollout",
        failures,
        measured,
        passed_note=f"SLO over in {len(over)} of the burst's {end - start:.0f} seconds, none "
        f"later than {recover_within_s:g}s after the last added replica served",
    )


def verify_check(answers: Sequence[FrontDoorAnswer], ttft_bound_ms: float) -> CheckResult:
    """Blue-green's verify step: every streamed probe straight to the candidate answered in full
    and by its primary pool, each first token within the switch's TTFT SLO (at the low load of
    one probe at a time, a candidate over it will be over it under traffic too)."""
    failures = [f"probe {i + 1}: {why}" for i, a in enumerate(answers) if (why := a.off())]
    ttfts = [a.ttft_s * 1000 for a in answers if a.ttft_s is not None]
    slow = [t for t in ttfts if t > ttft_bound_ms]
    if slow:
        failures.append(
            f"{len(slow)} of {len(ttfts)} probes' first token over the switch SLO of "
            f"{ttft_bound_ms:g} ms (slowest {max(slow):.0f} ms)"
        )
    return CheckResult.from_reasons(
        "blue-green: candidate verified before it takes traffic",
        "rollout",
        failures,
        {"probes": len(answers), "ttft_max_ms": round(max(ttfts), 1) if ttfts else None},
        passed_note=f"{len(answers)} streamed requests answered in full by the candidate, "
        f"each first token within {ttft_bound_ms:g} ms",
    )
