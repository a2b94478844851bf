"""Probes of the monitoring: targets scraped, PRACTICES.md metrics present, alert rules sound."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import httpx

from harness.paths import STACK_DIR
from harness.tools import find_binary
from harness.verdict.checks import CheckResult

PRACTICES_METRICS = (
    "llm_requests_total",
    "llm_request_duration_seconds_bucket",
    "llm_active_requests",
    "llm_tokens_generated_total",
    "llm_cache_hits_total",
    "llm_memory_used_bytes",
)
PRACTICES_ALERTS = ("HighErrorRate", "SlowResponse", "GPUMemoryHigh")


def _query(prom: str, expr: str) -> list[dict[str, object]]:
    r = httpx.get(f"{prom}/api/v1/query", params={"query": expr}, timeout=10)
    r.raise_for_status()
    result: list[dict[str, object]] = r.json()["data"]["result"]
    return result


def probe_monitoring(prometheus_url: str, settle_s: float = 5.0) -> CheckResult:
    """Every target up; the gateway exports PRACTICES.md's metrics; the alert rules are loaded."""
    t0 = time.monotonic()
    failures: list[str] = []
    targets = httpx.get(f"{prometheus_url}/api/v1/targets", timeout=10).json()["data"][
        "activeTargets"
    ]
    down = [
        f"{t['scrapePool']} {t['scrapeUrl']}: {t['lastError']}"
        for t in targets
        if t["health"] != "up"
    ]
    failures += [f"target down: {d}" for d in down]

    # The gateway's counters appear after the first requests; allow a scrape or two.
    deadline = time.monotonic() + settle_s
    while True:
        present = {
            str(s["metric"]["__name__"])  # type: ignore[index]
            for s in _query(
                prometheus_url, 'count by (__name__) ({__name__=~"llm_.*", job="gateway"})'
            )
        }
        missing = [m for m in PRACTICES_METRICS if m not in present]
        if not missing or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    failures += [f"metric {m} not exported by the gateways" for m in missing]

    rules = httpx.get(f"{prometheus_url}/api/v1/rules", timeout=10).json()["data"]["groups"]
    loaded = {r["name"] for g in rules for r in g["rules"]}
    failures += [f"alert rule {a} not loaded" for a in PRACTICES_ALERTS if a not in loaded]
    broken = [
        f"{r['name']}: {r.get('lastError')}"
        for g in rules
        for r in g["rules"]
        if r.get("health") == "err"
    ]
    failures += [f"alert rule fails to evaluate: {b}" for b in broken]
    measured: dict[str, float | int | str | None] = {
        "targets": len(targets),
        "targets_down": len(down),
        "practices_metrics_present": len(PRACTICES_METRICS) - len(missing),
        "alert_rules_loaded": len(loaded),
    }
    check = CheckResult.from_reasons(
        "metrics and alert rules", "monitoring", failures, measured,
        f"{len(targets)} targets up, {len(loaded)} alert rules loaded",
    )  # fmt: skip
    check.duration_s = round(time.monotonic() - t0, 3)
    return check


def probe_alert_rule_tests(rules_dir: Path = STACK_DIR / "prometheus") -> CheckResult:
    """promtool's rule unit tests: each alert fires when it should and stays silent otherwise."""
    t0 = time.monotonic()
    promtool = str(find_binary("promtool"))
    run = subprocess.run(
        [promtool, "test", "rules", "alerts_test.yml"],
        cwd=rules_dir, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    out = (run.stdout + run.stderr).strip()
    failures = (
        [] if run.returncode == 0 else [line for line in out.splitlines() if line.strip()][-10:]
    )
    check = CheckResult.from_reasons(
        "alert rule unit tests (promtool)", "monitoring", failures, {"exit_code": run.returncode},
        "every alert fires and stays silent as specified",
    )  # fmt: skip
    check.duration_s = round(time.monotonic() - t0, 3)
    return check
