"""`no stream cut off silently`, every experiment's default expectation: any silent cut fails it
with the count and a few request ids; and which checks read each phase's requests (evidence)."""

from __future__ import annotations

from harness.data.samples import STREAM_ENDED_SILENTLY, Sample
from harness.measure.fates import fate_table
from harness.spec.experiment import ExperimentSpec
from harness.verdict.chaos import phase_checks, phase_readers, silent_truncation_checks
from harness.verdict.checks import CheckResult

SPEC = {
    "kind": "experiment",
    "title": "cut",
    "fault": {"kind": "limit_data", "targets": ["primary-0"], "bytes": 2500},
    "expect": {"before": ["error_rate<=0.01"], "during": ["incomplete_share>=0.6"]},
}
EXP = ExperimentSpec.model_validate(SPEC)


def s(seq: int, **kw: object) -> Sample:
    base: dict[str, object] = dict(
        worker=0,
        seq=seq,
        kind="chat",
        tenant="t",
        prompt_id="p",
        repeated=False,
        intended_s=float(seq),
        sent_s=float(seq),
        e2e_ms=500.0,
        status=200,
        client_request_id=f"r-{seq}",
    )
    return Sample(**{**base, **kw})  # type: ignore[arg-type]


def silent(seq: int) -> Sample:
    return s(seq, error="incomplete", error_detail=STREAM_ENDED_SILENTLY, ttft_ms=30.0)


def test_no_silent_cut_passes() -> None:
    table = fate_table([s(i) for i in range(10)] + [s(11, error="stream_error")], 0.0, 5.0, 8.0)
    (check,) = silent_truncation_checks(EXP, table)
    assert check.name == "cut: no stream cut off silently"
    assert check.outcome == "pass" and check.reasons == ["0 of 11 requests cut off silently"]


def test_one_silent_cut_fails_with_the_count_and_its_ids() -> None:
    samples = [s(i) for i in range(40)] + [silent(i) for i in range(40, 47)]
    (check,) = silent_truncation_checks(EXP, fate_table(samples, 0.0, 20.0, 30.0))
    assert check.outcome == "fail"
    assert check.measured == {"silent_truncations": 7, "requests": 47}
    assert check.reasons[0].startswith("7 of 47 requests cut off silently")
    assert check.reasons[0].endswith("e.g. r-40, r-41, r-42, r-43, r-44")
    (one,) = silent_truncation_checks(EXP, fate_table([*samples[:40], silent(99)], 0, 20, 30))
    assert one.outcome == "fail" and one.measured["silent_truncations"] == 1


def test_an_experiment_may_opt_out() -> None:
    off = ExperimentSpec.model_validate(
        {**SPEC, "expect": {**SPEC["expect"], "no_silent_truncation": False}}  # type: ignore[dict-item]
    )
    assert silent_truncation_checks(off, fate_table([silent(1)], 0.0, 5.0, 8.0)) == []


def test_each_phase_is_read_by_its_own_expectations_and_the_whole_load_checks() -> None:
    checks = [
        CheckResult(name=n, category="chaos", outcome="pass")
        for n in (
            "cut: load kept its schedule",
            "cut: before the fault, error_rate<=0.01",
            "cut: during the fault, incomplete_share>=0.6",
            "cut: no stream cut off silently",
            "cut: alert X fires",
        )
    ]
    readers = phase_readers(EXP, checks)
    assert readers["before"] == [
        "cut: before the fault, error_rate<=0.01",
        "cut: load kept its schedule",
        "cut: no stream cut off silently",
    ]
    assert readers["during"][0] == "cut: during the fault, incomplete_share>=0.6"
    assert readers["after"] == ["cut: load kept its schedule", "cut: no stream cut off silently"]
    # The names are the phase checks' own.
    assert {c.name for c in phase_checks(EXP, {})} <= {n for r in readers.values() for n in r}
