"""The response cache judged under load: the hit rate against what the workload repeats.

PRACTICES.md calls a 20-40% hit rate typical, but what a cache can hit depends on the traffic: a
load whose repeats make up 40% of its answers should see about 40% hits, one with no repeats none.
So the claim judged is the share of the answers a working cache gives from its entries (the
repeats `harness/measure/cache_reuse.py` expects to hit, within the policy's TTL) that were hits:
`k` hits of `n` expected, Clopper-Pearson bounds, at least `policy.cache.min_hits_of_expected`.
The hit rate and the rate the repeats allow are said beside it. The cache probe
(`practices.py`) shows one hit is fast; this shows the hits happen while the load runs (a TTL of
a second passes the probe's back-to-back requests and misses nearly every repeat of a load).
"""

from __future__ import annotations

from collections.abc import Sequence

from harness.data.samples import Sample
from harness.measure.cache_reuse import CacheReuse, cache_reuse
from harness.spec.gate import GateSpec
from harness.spec.policy import CachePolicy
from harness.verdict.checks import CheckResult, Outcome, unmet
from harness.verdict.confidence import judge_proportion
from harness.verdict.slo import SloJudgement

NAME = "cache hit rate under load"
METRIC = "cache_hits_of_expected"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.1%}"


def judge_cache_hits(reuse: CacheReuse, min_share: float, alpha: float) -> SloJudgement:
    """Hits among the answers expected from the cache >= `min_share`, one-sided `alpha` bounds;
    the reason gives the hit rate beside the rate the repeats allow."""
    expr = f"{METRIC}>={min_share:g}"
    rates = (
        f"hit rate {_pct(reuse.hit_share)} ({reuse.hits} of {reuse.answered} answers) where "
        f"the workload's repeats allow {_pct(reuse.expected_share)} ({reuse.expected} answers "
        f"repeat a prompt answered earlier within the {reuse.ttl_s:g} s TTL)"
    )
    if reuse.said == 0:
        return SloJudgement(
            expr,
            "inconclusive",
            f"no answer said whether the cache served it (no X-Cache header on {reuse.answered} "
            "answers): the hit rate is not known",
            0,
            None,
        )
    if reuse.expected == 0:
        return SloJudgement(
            expr,
            "inconclusive",
            f"{rates}: no repeat came after its prompt's first answer, nothing to judge (run "
            "longer, or at a higher rate)",
            0,
            None,
        )
    j = judge_proportion(
        reuse.expected_hits, reuse.expected, ">=", min_share, alpha, label="hits of the expected"
    )
    off = (
        f"; X-Cache: bypass on all {reuse.said} answers: the cache did not take part"
        if reuse.bypass == reuse.said
        else ""
    )
    return SloJudgement(
        expr,
        j.decision,
        f"{rates}; {reuse.expected_hits} of those {reuse.expected} were hits: {j.reason}{off}",
        j.interval.n,
        j.interval.estimate,
        j.interval.lower,
        j.interval.upper,
        j.samples_needed,
    )


def judge_run_cache(samples: Sequence[Sample], alpha: float) -> SloJudgement:
    """`harness load`'s check on a workload that repeats prompts: the practices' cache (its TTL,
    the share of expected hits) against one run's samples."""
    policy = CachePolicy()
    return judge_cache_hits(
        cache_reuse([samples], policy.ttl_s), policy.min_hits_of_expected, alpha
    )


def cache_hit_check(
    gate: GateSpec, looks: Sequence[Sequence[Sample]], alpha: float, lacks: str | None = None
) -> CheckResult:
    """The gate's check on its load's samples (each look counted on its own); skipped with the
    reason where the profile's load repeats no prompt a cache may serve."""
    load = gate.load
    w = load.workload if load is not None else None
    if w is None or w.repeated_share == 0:
        return CheckResult(
            name=NAME,
            category="cache",
            outcome="skipped",
            reasons=[
                "the profile's load repeats no prompts (workload.repeated_share 0): there is no "
                "hit rate to expect (scenarios/cache-mix.yaml repeats half its prompts)"
            ],
        )
    if w.temperature != 0:
        return CheckResult(
            name=NAME,
            category="cache",
            outcome="skipped",
            reasons=[
                f"the profile's load repeats prompts at temperature {w.temperature}: answers "
                "that are not deterministic are not cached (set workload.temperature: 0)"
            ],
        )
    if lacks is not None:
        return unmet(NAME, "cache", lacks)
    policy = gate.policy.cache
    reuse = cache_reuse(looks, policy.ttl_s)
    j = judge_cache_hits(reuse, policy.min_hits_of_expected, alpha)
    outcome: Outcome = (
        j.decision if j.decision != "inconclusive" else gate.confidence.inconclusive_is
    )
    return CheckResult(
        name=NAME,
        category="cache",
        outcome=outcome,
        reasons=[j.reason],
        measured={
            "decision": j.decision,
            "n": j.n,
            "estimate": j.estimate,
            "lower": j.lower,
            "upper": j.upper,
            "hit_share": reuse.hit_share,
            "expected_share": reuse.expected_share,
            "answers": reuse.answered,
            "ttl_s": reuse.ttl_s,
        },
    )
