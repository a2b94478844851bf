"""Error rate, fallback share and degraded share in `harness compare` and the nightly: a planted
rise is `regressed` and blocks like a latency regression (synthetic runs, no stack)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from runs_fixture import make_run, synthetic_samples

from harness.compare.runs import load_run
from harness.compare.runs_compare import compare_runs
from harness.data.samples import Sample
from harness.nightly.run import record_nightly
from harness.spec.compare import CompareSpec

SPEC = CompareSpec(resamples=500)


def _served(samples: list[Sample], pool: str, k: int) -> list[Sample]:
    """The last k requests answered by `pool`; degraded answers are the gateway's 503s."""
    for s in samples[len(samples) - k :]:
        s.x_served_by = pool
        if pool == "degraded":
            s.status, s.error, s.ttft_ms, s.token_gaps_ms = 503, "http", None, []
    return samples


def _rates(tmp: Path, a: list[Sample], b: list[Sample]) -> dict[str, str]:
    c = compare_runs(load_run(make_run(tmp / "a", a)), load_run(make_run(tmp / "b", b)), SPEC)
    return {r.metric: r.label for r in c.rates} | {"blocking": ",".join(c.blocking)}


def test_fallback_and_degraded_shares_are_judged_like_the_error_rate(tmp_path: Path) -> None:
    base = synthetic_samples(600, seed=1)
    fallback = _rates(tmp_path / "f", base, _served(synthetic_samples(584, seed=2), "fallback", 17))
    assert fallback == {
        "error_rate": "same",
        "fallback_share": "regressed",
        "degraded_share": "same",
        "blocking": "fallback_share",
    }
    degraded = _rates(tmp_path / "d", base, _served(synthetic_samples(584, seed=2), "degraded", 17))
    assert degraded["degraded_share"] == "regressed" and degraded["error_rate"] == "regressed"
    assert degraded["blocking"] == "error_rate,degraded_share"
    better = _rates(
        tmp_path / "i",
        _served(synthetic_samples(600, seed=1), "fallback", 30),
        synthetic_samples(584, seed=2),
    )
    assert better["fallback_share"] == "improved" and better["blocking"] == ""


def test_rates_block_only_when_listed(tmp_path: Path) -> None:
    a = make_run(tmp_path / "a", synthetic_samples(600, seed=1))
    b = make_run(tmp_path / "b", synthetic_samples(584, seed=2, errors=17))
    c = compare_runs(load_run(a), load_run(b), SPEC.model_copy(update={"blocking": ("ttft_ms",)}))
    assert c.label == "regressed" and c.blocking == [] and c.verdict == "passed"


def test_a_stack_without_served_by_is_not_judged_on_shares(tmp_path: Path) -> None:
    samples = synthetic_samples(600, seed=1)
    for s in samples:
        s.x_served_by = None
    run = load_run(make_run(tmp_path / "a", samples))
    c = compare_runs(run, run, SPEC)
    labels = {r.metric: (r.label, r.reason) for r in c.rates}
    assert labels["fallback_share"] == (
        "inconclusive",
        "fallback share: not recorded in run A, not recorded in run B",
    )
    assert labels["error_rate"][0] == "same"


def test_nightly_where_errors_go_from_0_to_3_percent_blocks(tmp_path: Path) -> None:
    hist = tmp_path / "history"
    first = make_run(tmp_path / "runs" / "night-0", synthetic_samples(600, seed=1))
    assert record_nightly(hist, first, SPEC).record.accepted
    bad = make_run(tmp_path / "runs" / "night-1", synthetic_samples(584, seed=2, errors=17))
    night = record_nightly(hist, bad, SPEC)
    assert night.blocking and night.record.blocking == ["error_rate"]
    assert night.record.label == "regressed" and not night.record.accepted
    assert any("error rate 0.0% (0/600) -> 2.9% (17/584), +2.9 pp" in x for x in night.lines)


def _harness(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness", *args], capture_output=True, text=True, timeout=120
    )


def test_compare_cli_blocks_on_an_error_rate_rise(tmp_path: Path) -> None:
    a = make_run(tmp_path / "a", synthetic_samples(600, seed=1))
    b = make_run(tmp_path / "b", synthetic_samples(584, seed=2, errors=17))
    r = _harness("compare", str(a), str(b), "--out", str(tmp_path / "ab"))
    assert r.returncode == 1, r.stdout + r.stderr
    assert "blocking regression: error_rate" in r.stdout
    assert "error rate 0.0% (0/600) -> 2.9% (17/584), +2.9 pp, 95% CI [+1.7, +4.6] pp" in r.stdout
    result = json.loads((tmp_path / "ab" / "compare.json").read_text())
    assert result["blocking"] == ["error_rate"] and result["min_effect_pp"] == 1.0
    rate = next(x for x in result["rates"] if x["metric"] == "error_rate")
    assert (rate["k_a"], rate["n_a"], rate["k_b"], rate["n_b"]) == (0, 600, 17, 584)
    page = (tmp_path / "ab" / "compare.html").read_text()
    assert "<h2>Rates</h2>" in page and "+2.9 [+1.7, +4.6]" in page and "REGRESSED" in page
    # A larger minimum effect: the same rise is no change that matters.
    r = _harness("compare", str(a), str(b), "--min-effect-pp", "5", "--out", str(tmp_path / "x"))
    assert r.returncode == 0, r.stdout + r.stderr
    # Swapped, the same change is an improvement: nothing blocks.
    r = _harness("compare", str(b), str(a), "--out", str(tmp_path / "ba"))
    assert r.returncode == 0 and "(0/600), -2.9 pp" in r.stdout and "IMPROVED" in r.stdout


def test_bad_minimum_effect_for_rates_exits_2_with_file_and_field(tmp_path: Path) -> None:
    a = make_run(tmp_path / "a", synthetic_samples(30, seed=1))
    profile = tmp_path / "profile.yaml"
    profile.write_text("kind: gate\nname: p\ncompare: {min_effect_pp: 0}\n")
    r = _harness("compare", str(a), str(a), "--profile", str(profile))
    assert r.returncode == 2, r.stdout + r.stderr
    assert str(profile) in r.stderr and "compare.min_effect_pp" in r.stderr
    assert "Traceback" not in r.stderr
    r = _harness("compare", str(a), str(a), "--min-effect-pp", "150")
    assert r.returncode == 2 and "--min-effect-pp" in r.stderr
