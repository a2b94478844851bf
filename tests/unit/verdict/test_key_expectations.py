"""In a gate, an experiment's expectation the profile names key must be decided: one left
inconclusive has not passed. Expectations not named key may stay warnings."""

from __future__ import annotations

from harness.paths import PROJECT_ROOT
from harness.spec.experiment import ExperimentSpec
from harness.spec.gate import GateSpec
from harness.spec.loader import load_yaml_model
from harness.verdict.chaos import key_expectations_decided, phase_check_name
from harness.verdict.checks import CheckResult

FALLBACK = "primary pool down, fallback serves: during the fault, fallback_share>=0.8"


def phase(name: str, decision: str, outcome: str) -> CheckResult:
    return CheckResult(
        name=name,
        category="chaos",
        outcome=outcome,  # type: ignore[arg-type]
        reasons=["fallback_share = 1, 95% bounds [0.74, 1] straddle 0.8"],
        measured={"requests": 10, "decision": decision},
    )


def test_a_key_expectation_left_inconclusive_fails() -> None:
    (c,) = key_expectations_decided([phase(FALLBACK, "inconclusive", "warn")], (FALLBACK,))
    assert c.outcome == "fail"
    assert c.reasons[-1] == "a key expectation of the gate profile left inconclusive has not passed"


def test_decided_or_not_key_expectations_are_left_as_judged() -> None:
    other = "primary pool down, fallback serves: before the fault, error_rate<=0.01"
    checks = [
        phase(FALLBACK, "pass", "pass"),
        phase(other, "inconclusive", "warn"),
    ]
    assert key_expectations_decided(checks, (FALLBACK,)) == checks


def test_the_default_profile_names_expectations_its_experiments_have() -> None:
    """A key name with a typo would only say "did not run": each must be a real expectation."""
    path = PROJECT_ROOT / "reports" / "profiles" / "default.yaml"
    gate = load_yaml_model(GateSpec, path)
    names = set()
    for rel in gate.experiments:
        exp = load_yaml_model(ExperimentSpec, (path.parent / rel).resolve())
        for ph, exprs in (("before", exp.expect.before), ("during", exp.expect.during)):
            names |= {phase_check_name(exp, ph, e) for e in exprs}
    keyed = [k for k in gate.key_checks if " the fault, " in k]
    assert len(keyed) == 2 and set(keyed) <= names, (keyed, names)
