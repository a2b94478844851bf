"""The cache hit rate against what the workload repeats: which repeats a working cache answers
(`measure/cache_reuse.py`), and the share of them that hit judged with its bound (`verdict/
cache_hits.py`), in the gate and in `harness load`."""

from __future__ import annotations

import pytest

from harness.data.samples import Sample
from harness.measure.cache_reuse import SETTLE_S, cache_reuse
from harness.measure.summary import RunContext, WorkerAccount, summarize
from harness.spec.gate import GateSpec
from harness.verdict.cache_hits import cache_hit_check, judge_cache_hits
from harness.verdict.load_run import judge_run

T0 = 1_000_000.0


def req(
    sent: float,
    prompt: str = "hot-0",
    cache: str | None = "miss",
    e2e_ms: float = 100.0,
    repeated: bool = True,
    **kw: object,
) -> Sample:
    fields: dict[str, object] = {
        "worker": 0,
        "seq": 0,
        "kind": "chat",
        "tenant": "default",
        "prompt_id": prompt,
        "repeated": repeated,
        "intended_s": T0 + sent,
        "sent_s": T0 + sent,
        "e2e_ms": e2e_ms,
        "ttft_ms": 20.0,
        "status": 200,
        "x_cache": cache,
    }
    fields.update(kw)
    return Sample(**fields)  # type: ignore[arg-type]


def test_a_repeat_is_expected_to_hit_only_once_its_prompt_was_answered_within_the_ttl() -> None:
    run = [
        req(0.0),  # first occurrence: a miss even for a working cache
        req(0.05, e2e_ms=50),  # sent while the first answer still streamed: a miss too
        req(0.1 + SETTLE_S / 2),  # just after the first answer ended: not stored yet
        req(1.0, cache="hit"),  # expected, and a hit
        req(2.0, cache="miss"),  # expected, but a miss
        req(12.0),  # the entry (stored at 0.1 + SETTLE_S, TTL 10 s) is gone: a miss, refills
        req(13.0, cache="hit"),  # expected from the refill
        req(3.0, prompt="w0-7", repeated=False),  # a fresh prompt is never expected
        req(4.0, prompt="hot-1", error="http", status=500, cache=None),  # a failure fills nothing
        req(5.0, prompt="hot-1", cache="hit"),  # a hit from some earlier run: not expected
    ]
    r = cache_reuse([run], ttl_s=10)
    assert (r.expected, r.expected_hits) == (3, 2)
    assert (r.answered, r.hits, r.repeated, r.said, r.bypass) == (9, 3, 8, 9, 0)
    assert r.expected_share == pytest.approx(3 / 9) and r.hit_share == pytest.approx(3 / 9)


def test_runs_and_request_kinds_are_counted_apart() -> None:
    # A gate's looks draw their own pool prompts: hot-0 of one look is not hot-0 of the next.
    look1, look2 = [req(0.0)], [req(5.0, cache="hit")]
    assert cache_reuse([look1, look2], 3600).expected == 0
    assert cache_reuse([look1 + look2], 3600).expected == 1
    # A chat and a completion of one prompt are two entries.
    assert cache_reuse([[req(0.0), req(5.0, kind="completion")]], 3600).expected == 0


def repeats(hits: int, misses: int) -> list[Sample]:
    """One filling miss, then `hits` hits and `misses` misses of the same prompt, 1 s apart."""
    kinds = ["hit"] * hits + ["miss"] * misses
    return [req(0.0), *(req(1.0 + i, cache=c) for i, c in enumerate(kinds))]


def test_the_share_of_expected_hits_is_judged_with_its_bound() -> None:
    ok = judge_cache_hits(cache_reuse([repeats(30, 0)], 3600), 0.8, 0.05)
    assert ok.decision == "pass" and ok.n == 30 and ok.lower is not None and ok.lower > 0.9
    assert ok.reason.startswith("hit rate 96.8% (30 of 31 answers) where the workload's repeats ")
    assert "allow 96.8% (30 answers repeat a prompt answered earlier within the 3600 s TTL)" in (
        ok.reason
    )
    assert "30 of those 30 were hits: hits of the expected = 1, 95% lower bound" in ok.reason
    bad = judge_cache_hits(cache_reuse([repeats(5, 25)], 3600), 0.8, 0.05)
    assert bad.decision == "fail" and bad.upper is not None and bad.upper < 0.8
    few = judge_cache_hits(cache_reuse([repeats(4, 0)], 3600), 0.8, 0.05)
    assert few.decision == "inconclusive" and few.samples_needed is not None


def test_a_cache_that_took_no_part_says_so_and_one_never_asked_is_not_known() -> None:
    off = [req(0.0, cache="bypass"), *(req(1.0 + i, cache="bypass") for i in range(20))]
    j = judge_cache_hits(cache_reuse([off], 3600), 0.8, 0.05)
    assert j.decision == "fail" and "X-Cache: bypass on all 21 answers" in j.reason
    bare = [req(0.0, cache=None), req(1.0, cache=None)]
    j = judge_cache_hits(cache_reuse([bare], 3600), 0.8, 0.05)
    assert j.decision == "inconclusive" and "no X-Cache header on 2 answers" in j.reason
    once = [req(0.0), req(1.0, prompt="hot-1")]
    j = judge_cache_hits(cache_reuse([once], 3600), 0.8, 0.05)
    assert j.decision == "inconclusive" and "no repeat came after its prompt's first" in j.reason


def gate(**workload: object) -> GateSpec:
    load = {"workload": workload, "load": {"kind": "open", "rate_rps": 4}, "duration_s": 10}
    return GateSpec.model_validate({"load": load})


def test_the_gate_check_runs_only_on_a_load_that_repeats_deterministic_prompts() -> None:
    no_repeats = cache_hit_check(gate(), [repeats(30, 0)], 0.05)
    assert no_repeats.outcome == "skipped"
    assert "repeats no prompts (workload.repeated_share 0)" in no_repeats.reasons[0]
    sampled = cache_hit_check(gate(repeated_share=0.5), [repeats(30, 0)], 0.05)
    assert sampled.outcome == "skipped" and "temperature None" in sampled.reasons[0]
    cached = gate(repeated_share=0.5, temperature=0)
    lacking = cache_hit_check(cached, [repeats(30, 0)], 0.05, lacks="no gateway")
    assert (
        lacking.outcome == "skipped"
        and "cannot run on this stack: no gateway" in (lacking.reasons[0])
    )
    passed = cache_hit_check(cached, [repeats(30, 0)], 0.05)
    assert passed.outcome == "pass" and passed.category == "cache"
    m = passed.measured
    assert m["n"] == 30 and m["expected_share"] == pytest.approx(30 / 31)
    failed = cache_hit_check(cached, [repeats(5, 25)], 0.05)
    assert failed.outcome == "fail" and "5 of those 30 were hits" in failed.reasons[0]
    # Undecided, it ends as the profile says an undecided SLO ends.
    assert cache_hit_check(cached, [repeats(4, 0)], 0.05).outcome == "fail"


def test_harness_load_judges_the_hits_as_a_default_check_of_a_repeating_workload() -> None:
    samples = repeats(5, 25)
    c = RunContext(
        start_s=T0,
        duration_s=40.0,
        open_loop=False,
        workers=[WorkerAccount(0, T0, T0 + 40)],
        cache_repeats=True,
    )
    checks = judge_run(samples, summarize(samples, c), c)
    (cache,) = [k for k in checks if k.expr.startswith("cache_hits_of_expected")]
    assert cache.expr == "cache_hits_of_expected>=0.8" and cache.default
    assert cache.decision == "fail" and cache.n == 30 and cache.alpha == 0.05
    assert "(default check: a workload that repeats prompts is answered from the cache)" in (
        cache.reason
    )
    c.cache_repeats = False
    assert not [k for k in judge_run(samples, summarize(samples, c), c) if "cache" in k.expr]
