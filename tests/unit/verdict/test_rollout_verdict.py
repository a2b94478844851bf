"""The canary's looks and the traffic moves' checks, on hand-made samples (no processes)."""

from __future__ import annotations

import numpy as np

from harness.data.samples import STREAM_ENDED_SILENTLY, Sample
from harness.spec.rollout import Analysis, Margins, Switch
from harness.verdict.rollout import (
    Move,
    canary_check,
    look_at_step,
    move_check,
    move_requests,
    verify_check,
)
from harness.verdict.steady_state import FrontDoorAnswer


def _samples(
    n: int,
    rng: np.random.Generator,
    *,
    slower: float = 0.0,
    fallback_every: int = 0,
    errors_every: int = 0,
    version: str = "baseline",
) -> list[Sample]:
    out = []
    for i in range(n):
        ttft = 40.0 * (1 + slower) * float(rng.lognormal(0, 0.2))
        gaps = [5.0 * (1 + slower) * float(rng.lognormal(0, 0.1)) for _ in range(15)]
        s = Sample(
            worker=0,
            seq=i,
            kind="chat",
            tenant="t",
            prompt_id=f"p{i}",
            repeated=False,
            intended_s=None,
            sent_s=float(i),
            e2e_ms=ttft + sum(gaps),
            status=200,
            ttft_ms=ttft,
            token_gaps_ms=gaps,
            output_tokens=16,
            finish_reason="stop",
            x_served_by="primary",
            x_version=version,
            client_request_id=f"{version}-{i}",
        )
        if fallback_every and i % fallback_every == 0:
            s.x_served_by = "fallback"
        if errors_every and i % errors_every == 0:
            s.error, s.status = "http", 500
        out.append(s)
    return out


def test_an_identical_candidate_is_promoted() -> None:
    rng = np.random.default_rng(1)
    look = look_at_step(0.5, 3, 30.0, _samples(800, rng), _samples(800, rng), Analysis())
    assert look.decision == "promote", look.reasons
    assert {f.name for f in look.figures} == {
        "ttft_p50",
        "ttft_p95",
        "itl_p50",
        "e2e_p50",
        "error_rate",
        "fallback_share",
    }
    assert all(f.verdict == "no_worse" for f in look.figures)


def test_a_candidate_20_percent_slower_is_aborted_naming_the_figure() -> None:
    rng = np.random.default_rng(2)
    base, cand = _samples(800, rng), _samples(400, rng, slower=0.2)
    look = look_at_step(0.2, 3, 30.0, base, cand, Analysis())
    assert look.decision == "abort"
    worse = {f.name for f in look.figures if f.verdict == "worse"}
    assert "ttft_p50" in worse
    assert any("ttft_p50" in r and "shown worse" in r for r in look.reasons)


def test_more_fallback_answers_than_the_margin_abort() -> None:
    rng = np.random.default_rng(3)
    base, cand = _samples(3000, rng), _samples(3000, rng, fallback_every=20)  # +5 pp
    look = look_at_step(0.5, 4, 40.0, base, cand, Analysis())
    assert look.decision == "abort"
    assert [f.name for f in look.figures if f.verdict == "worse"] == ["fallback_share"]


def test_undecided_holds_until_the_last_look_then_aborts() -> None:
    rng = np.random.default_rng(4)
    base, cand = _samples(40, rng), _samples(12, rng)
    analysis = Analysis(max_looks=4)
    assert look_at_step(0.05, 1, 10.0, base, cand, analysis).decision == "hold"
    last = look_at_step(0.05, 4, 40.0, base, cand, analysis)
    assert last.decision == "abort"
    assert all("still undecided" in r for r in last.reasons)
    # Each undecided figure says about how much traffic would have decided it.
    rate = next(f for f in last.figures if f.name == "error_rate")
    assert rate.verdict == "undecided" and rate.needed_candidate is not None
    assert rate.needed_candidate > rate.n_candidate
    assert "candidate requests would decide (12 so far)" in rate.reason
    # No error in either: "no more than 1 pp worse" needs some hundreds of candidate requests.
    assert 150 < rate.needed_candidate < 2000


def test_a_candidate_with_no_requests_is_undecided_never_promoted() -> None:
    rng = np.random.default_rng(5)
    look = look_at_step(0.05, 1, 10.0, _samples(500, rng), [], Analysis(max_looks=1))
    assert look.decision == "abort"
    assert all(f.verdict == "undecided" for f in look.figures)


# A profile for a stack whose steps carry a few requests (llama.cpp on CPU): gross failures only.
GROSS = Analysis(
    judge="gross_failures", max_looks=4, margins=Margins(error_rate_pp=25, fallback_share_pp=25)
)


def test_gross_failures_promote_on_few_requests_and_say_what_latency_would_need() -> None:
    rng = np.random.default_rng(11)
    base, cand = _samples(40, rng), _samples(30, rng)
    look = look_at_step(0.5, 4, 40.0, base, cand, GROSS, window_s=20.0)
    assert look.decision == "promote", look.reasons
    assert {f.name for f in look.figures if f.judged} == {"error_rate", "fallback_share"}
    # Every figure is still measured: the latency ones with an interval, unjudged.
    p95 = next(f for f in look.figures if f.name == "ttft_p95")
    assert not p95.judged and p95.low is not None and p95.high is not None
    assert p95.verdict == "undecided" and p95.needed_candidate is not None
    assert p95.needed_candidate > 30
    note = next(n for n in look.notes if n.startswith("not judged: ttft_p95"))
    assert "at this step's 1.5 candidate requests/s" in note
    # The same requests under a profile that judges every figure decide nothing.
    every = Analysis(max_looks=4, margins=GROSS.margins)
    assert look_at_step(0.5, 4, 40.0, base, cand, every).decision == "abort"
    check = canary_check([look], (0.5, 1.0), promoted=True)
    assert check.outcome == "pass"
    finer = [r for r in check.reasons if "finer effects need more traffic" in r]
    assert finer and "ttft_p95 about" in finer[0] and "(30 candidate requests" in finer[0]
    assert check.measured["judged"] == "gross failures"
    assert check.measured["latency_needed_candidate"] == max(
        f.needed_candidate for f in look.figures if not f.judged and f.needed_candidate
    )


def test_gross_failures_abort_a_candidate_that_does_not_answer() -> None:
    rng = np.random.default_rng(12)
    base = _samples(40, rng)
    failing = _samples(6, rng, errors_every=1, version="candidate")
    look = look_at_step(0.5, 2, 20.0, base, failing, GROSS)
    assert look.decision == "abort"
    assert [f.name for f in look.figures if f.verdict == "worse"] == ["error_rate"]
    assert "error_rate 0/40 -> 6/6" in look.reasons[0]
    # Answered by the fallback pool instead of its own model: as gross.
    fallback = _samples(6, rng, fallback_every=1, version="candidate")
    look = look_at_step(0.5, 2, 20.0, base, fallback, GROSS)
    assert look.decision == "abort" and "fallback_share" in look.reasons[0]


def test_gross_failures_report_a_slower_candidate_without_judging_it() -> None:
    rng = np.random.default_rng(13)
    base, cand = _samples(400, rng), _samples(400, rng, slower=0.5)
    look = look_at_step(0.5, 2, 20.0, base, cand, GROSS)
    assert look.decision == "promote"
    worse = [f for f in look.figures if f.verdict == "worse"]
    assert worse and not any(f.judged for f in worse)
    check = canary_check([look], (0.5, 1.0), promoted=True)
    assert any("shown worse than its margin, not judged" in r for r in check.reasons)


def test_later_looks_spend_more_alpha() -> None:
    rng = np.random.default_rng(6)
    base, cand = _samples(100, rng), _samples(100, rng)
    alphas = [look_at_step(0.5, k, 0.0, base, cand, Analysis()).alpha for k in (1, 3, 6)]
    assert alphas[0] < alphas[1] < alphas[2]
    assert sum(look_at_step(0.5, k, 0, base, cand, Analysis()).alpha for k in range(1, 7)) <= 0.05


def test_canary_check_names_where_it_stopped() -> None:
    rng = np.random.default_rng(7)
    slow = look_at_step(
        0.2, 2, 20.0, _samples(800, rng), _samples(400, rng, slower=0.3), Analysis()
    )
    check = canary_check([slow], (0.2, 1.0), promoted=False)
    assert check.outcome == "fail"
    assert check.reasons[0].startswith("aborted at 20%, look 2 of 6")
    ok = canary_check([], (1.0,), promoted=True)
    assert ok.outcome == "pass"


def test_a_failed_move_stops_the_canary_with_its_reason() -> None:
    """A hook that could not move the traffic: the canary fails on that, not on its looks."""
    rng = np.random.default_rng(7)
    fine = look_at_step(0.5, 1, 5.0, _samples(800, rng), _samples(800, rng), Analysis())
    why = "the move to 100% failed: set_weight hook `move 100` exited 3: weights locked"
    check = canary_check([fine], (0.5, 1.0), promoted=False, failed_move=why)
    assert check.outcome == "fail" and check.reasons == [f"aborted: {why}"]
    move = Move("step to 100%: 50% -> 100% candidate", 10.0, None, problems=(why,))
    around = _move_samples(10.0)
    failed = move_check(move, around, around, Switch())
    assert failed.outcome == "fail" and failed.reasons[0] == why


def _move_samples(at: float) -> list[Sample]:
    rng = np.random.default_rng(8)
    out = _samples(40, rng, version="candidate")
    for i, s in enumerate(out):
        s.sent_s = at - 1.0 + i * 0.1
    return out


def test_a_clean_move_passes_and_counts_its_requests() -> None:
    at = 10.0
    samples = _move_samples(at)
    move = Move("switch", at, "candidate", drain_s=0.4, drained=True)
    around = move_requests(samples, move, 2.0)
    after = [s for s in samples if s.sent_s >= at + 2.0]
    check = move_check(move, around, after, Switch())
    assert check.outcome == "pass", check.reasons
    assert check.measured["requests"] == len(around) > 0
    assert check.measured["drain_s"] == 0.4


def test_cut_streams_and_failed_requests_fail_the_move() -> None:
    at = 10.0
    samples = _move_samples(at)
    around_ids = {s.client_request_id for s in move_requests(samples, Move("m", at, None), 2)}
    cut, failed = [s for s in samples if s.client_request_id in around_ids][:2]
    cut.error, cut.error_detail = "incomplete", STREAM_ENDED_SILENTLY
    failed.error, failed.status = "connect", 0
    move = Move("restart", at, None)
    check = move_check(move, move_requests(samples, move, 2.0), [], Switch())
    assert check.outcome == "fail"
    assert "cut_silently 1" in check.reasons[0] and "failed 1" in check.reasons[0]
    assert check.measured["cut_silently"] == 1


def test_a_move_that_did_not_take_or_did_not_drain_fails() -> None:
    at = 10.0
    samples = _move_samples(at)
    for s in samples:
        s.x_version = "baseline"  # every answer still from the version meant to leave
    move = Move("switch", at, "candidate", drain_s=None, drained=False)
    after = [s for s in samples if s.sent_s >= at + 2.0]
    check = move_check(move, move_requests(samples, move, 2.0), after, Switch())
    assert check.outcome == "fail"
    assert any("not served by candidate" in r for r in check.reasons)
    assert any("drain bound" in r for r in check.reasons)


def test_a_slow_switch_fails_the_switch_slo() -> None:
    at = 10.0
    samples = _move_samples(at)
    for s in samples:
        s.ttft_ms = 5000.0
    move = Move("switch", at, None)
    check = move_check(move, move_requests(samples, move, 2.0), [], Switch(ttft_p95_ms=2000))
    assert check.outcome == "fail"
    assert any("TTFT p95" in r for r in check.reasons)


def test_a_replica_replaced_counts_its_whole_window_and_its_problems() -> None:
    at = 10.0
    samples = _move_samples(at)
    move = Move(
        "replace primary-0",
        at,
        None,
        until_s=at + 2.0,
        figures={"cold_start_s": 1.5},
        problems=("the new replica answered no first token within 120s",),
    )
    around = move_requests(samples, move, 1.0)
    assert max(s.sent_s for s in around) >= at + 2.0  # sent while the replica was out
    check = move_check(move, around, [], Switch())
    assert check.outcome == "fail" and check.reasons[0].startswith("the new replica")
    assert check.measured["cold_start_s"] == 1.5


def test_a_baseline_quantile_that_resamples_to_zero_is_undecided_not_a_crash() -> None:
    # Inter-token gaps of 0 (tokens that came in one read) in nearly half the baseline: some
    # resampled medians are 0 and the relative change has no interval.
    rng = np.random.default_rng(5)
    base, cand = _samples(12, rng), _samples(12, rng)
    for s in base[:6]:
        s.token_gaps_ms = [0.0] * 15
    look = look_at_step(0.5, 1, 10.0, base, cand, Analysis())
    itl = next(f for f in look.figures if f.name == "itl_p50")
    assert itl.verdict == "undecided" and itl.needed_candidate is None, itl
    assert itl.low is None and "no interval" in itl.reason
    assert look.decision == "hold"


def test_blue_greens_verify_step_fails_a_candidate_that_errs_or_is_slow_alone() -> None:
    good = FrontDoorAnswer(200, "primary", 0.120, None, 4)
    assert verify_check([good] * 3, 2000.0).outcome == "pass"
    down = verify_check([good, FrontDoorAnswer(500, None, None, "server error"), good], 2000.0)
    assert down.outcome == "fail" and down.reasons == ["probe 2: answered 500: server error"]
    slow = verify_check([good, FrontDoorAnswer(200, "primary", 2.5, None, 4), good], 2000.0)
    assert slow.outcome == "fail"
    assert slow.reasons == [
        "1 of 3 probes' first token over the switch SLO of 2000 ms (slowest 2500 ms)"
    ]


def _stalled(version: str, stalled: set[int], *, one_second_each: bool) -> list[Sample]:
    """300 requests over 12 seconds, 25 a second; those of the `stalled` seconds 1.8x slower to
    first token. `one_second_each`: the same values, each request alone in its own second."""
    out = _samples(300, np.random.default_rng(7), version=version)
    for i, s in enumerate(out):
        s.sent_s = float(i) if one_second_each else i // 25 + (i % 25) / 25
        if i // 25 in stalled:
            assert s.ttft_ms is not None
            s.e2e_ms += 0.8 * s.ttft_ms
            s.ttft_ms *= 1.8
    return out


def test_stalls_that_hit_one_version_in_more_seconds_do_not_abort_an_identical_candidate() -> None:
    # Requests of one second share its stalls: the candidate's 6 stalled seconds of 12 against
    # the baseline's 2 are 12 draws per version, not 300. Read as 300 independent requests, the
    # same values show the candidate "worse".
    def look(one_second_each: bool) -> dict[str, str]:
        base = _stalled("baseline", {0, 7}, one_second_each=one_second_each)
        cand = _stalled("candidate", {1, 3, 4, 6, 9, 11}, one_second_each=one_second_each)
        lk = look_at_step(0.5, 3, 30.0, base, cand, Analysis())
        return {f.name: f.verdict for f in lk.figures}

    assert look(one_second_each=True)["ttft_p50"] == "worse"
    assert look(one_second_each=False)["ttft_p50"] == "undecided"


def test_a_latency_figure_needs_ten_seconds_of_each_version() -> None:
    rng = np.random.default_rng(3)
    base, cand = _samples(200, rng), _samples(200, rng, version="candidate", slower=1.0)
    for i, s in enumerate(base + cand):
        s.sent_s = (i % 200) / 25  # 8 seconds of requests
    lk = look_at_step(0.5, 1, 8.0, base, cand, Analysis())
    ttft = next(f for f in lk.figures if f.name == "ttft_p50")
    assert ttft.verdict == "undecided" and "8 distinct seconds" in ttft.reason
    assert lk.decision == "hold"
