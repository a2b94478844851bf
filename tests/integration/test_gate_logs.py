"""A gate run with a fault (a primary pool that fails half its answers): every failed or
fallback request of the load step is in the report with its lines from nginx and the gateway,
read from the stack's log store, under a load check; the log hygiene checks pass."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_gate_defects import SIM_POLICY, run_gate

pytestmark = [pytest.mark.integration, pytest.mark.gate, pytest.mark.slow]

PROFILE = {
    "probes": {
        k: False
        for k in (
            "breaker",
            "rate_limit",
            "alert_rule_tests",
            "pii",
            "cache",
            "cost",
            "streaming",
            "security",
            "injection",
            "monitoring",
        )
    },
    "load": {
        "duration_s": "5s",
        "workload": {"max_tokens": 8},
        "load": {"kind": "open", "rate_rps": 4, "max_send_lag_ms": 250},
    },
    "slos": ["ttft_p95_ms<=5000"],
    "confidence": {"max_duration_s": "0s"},
    "policy": SIM_POLICY,
    "key_checks": [],
}


def test_failed_and_fallback_requests_are_traced_to_their_log_lines(tmp_path: Path) -> None:
    failing = {"primary": {"server": {"failure_injection_rate": 50}}}
    rc, report, out = run_gate(tmp_path, PROFILE, failing)
    assert rc in (0, 1), out[-3000:]
    logging_checks = {
        c["name"]: c["outcome"] for c in report["checks"] if c["category"] == "logging"
    }
    assert set(logging_checks.values()) == {"pass"}, logging_checks

    traced = [(c, e) for c in report["checks"] for e in c.get("evidence", [])]
    assert traced, "no failed or fallback request traced"
    assert len({c["name"] for c, _ in traced}) == 1  # under one check of the load step
    check = traced[0][0]
    assert check["category"] in ("load", "slo", "logging"), check["name"]
    for _, e in traced:
        assert e["outcome"] == "served by the fallback pool" or e["status"] >= 400, e
        layers = {line["layer"] for line in e["lines"]}
        assert {"gateway", "nginx"} <= layers, e
        gateway = next(line for line in e["lines"] if line["layer"] == "gateway")
        assert gateway["fields"]["request_id"] == e["request_id"]
        assert gateway["fields"]["status"] == str(e["status"]), (gateway, e)
    html = (tmp_path / "out" / "report.html").read_text()
    assert f"<code>{traced[0][1]['request_id']}</code>" in html
    summary = (tmp_path / "out" / "summary.md").read_text()
    assert traced[0][1]["request_id"] in summary
