"""The alert rules fire and stay silent as PRACTICES.md says (promtool's own rule tests)."""

import subprocess

from harness.paths import STACK_DIR
from harness.tools import find_binary


def test_promtool_rule_tests_pass() -> None:
    # The promtool `make install` builds beside the stack's Prometheus, as the gate runs it.
    promtool = str(find_binary("promtool"))
    prom = STACK_DIR / "prometheus"
    check = subprocess.run(
        [promtool, "check", "rules", "alerts.yml"], cwd=prom, capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr
    run = subprocess.run(
        [promtool, "test", "rules", "alerts_test.yml"], cwd=prom, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stdout + run.stderr
