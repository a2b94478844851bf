"""The gate judges the response cache's hits under a load that repeats prompts: the reference
simulated stack passes; a cache whose entries live one second (the probe's back-to-back hits
still pass, the load's repeats miss) fails with the check's reason. The profile is
tests/fixtures/gate-cache-mix.yaml."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = [pytest.mark.integration, pytest.mark.gate]

FIXTURES = Path(__file__).parents[1] / "fixtures"
PROFILE = FIXTURES / "gate-cache-mix.yaml"
CHECK = "cache hit rate under load"


def gate(tmp_path: Path, *extra: str) -> tuple[int, dict[str, Any], str]:
    out = tmp_path / "out"
    r = subprocess.run(
        [
            *(sys.executable, "-m", "harness", "gate", "--profile", str(PROFILE), *extra),
            *("--out", str(out), "--no-history"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    return r.returncode, json.loads((out / "report.json").read_text()), r.stdout + r.stderr


def check(report: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(c for c in report["checks"] if c["name"] == name)
    return found


def test_the_reference_cache_hits_what_the_load_repeats(tmp_path: Path) -> None:
    rc, report, out = gate(tmp_path)
    assert rc == 0, out[-3000:]
    hits = check(report, CHECK)
    assert hits["outcome"] == "pass", hits
    m = hits["measured"]
    # 14 expected hits all hit is the least whose one-sided 95% lower bound reaches 0.8.
    assert m["n"] >= 14 and m["lower"] >= 0.8 and m["ttl_s"] == 3600
    # About half the answers: 60% of the requests repeat (each drawn), less each prompt's first
    # answer and the repeats sent before it came back.
    assert 0.2 <= m["expected_share"] <= 0.8 and m["hit_share"] >= 0.8 * m["expected_share"]
    assert "where the workload's repeats allow" in hits["reasons"][0]
    # The gate's load table gives goodput, here from the profile's aggregate SLO alone: none.
    text = (tmp_path / "out" / "summary.md").read_text()
    assert "goodput (requests meeting every per-request SLO)" in text


def test_a_cache_whose_entries_expire_at_once_fails_under_load(tmp_path: Path) -> None:
    stack = yaml.safe_load((FIXTURES / "sim-stack.yaml").read_text())
    stack["gateway"]["settings"]["cache"] = {"ttl_s": 1}  # the policy allows any TTL up to 3600
    (tmp_path / "stack.yaml").write_text(yaml.safe_dump(stack))
    rc, report, out = gate(tmp_path, "--stack", str(tmp_path / "stack.yaml"))
    assert rc == 1, out[-3000:]
    assert check(report, "response cache")["outcome"] == "pass"  # one fast hit: the probe passes
    hits = check(report, CHECK)
    assert hits["outcome"] == "fail", hits
    (reason,) = hits["reasons"]
    assert "were hits: hits of the expected = " in reason and "violates >= 0.8" in reason
    assert hits["measured"]["upper"] < 0.8
