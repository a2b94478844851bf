"""Gate checks and their outcomes: every check reports every reason, with number and threshold."""

from harness.verdict.checks import CheckResult, Outcome, overall_outcome

__all__ = ["CheckResult", "Outcome", "overall_outcome"]
