"""Names a spec file uses that must exist in the stack, checked before anything starts.

Experiments name Toxiproxy proxies or services (fault targets) and alert rules (expectations);
loads may name a model, which must be the served name of one of the stack's pools.
"""

from __future__ import annotations

from pathlib import Path

from harness.errors import ConfigError, ConfigProblem
from harness.spec.experiment import ExperimentSpec, unknown_targets
from harness.spec.load import LoadSpec
from harness.spec.stack import StackSpec
from harness.stack import render


def alert_names(spec: StackSpec) -> set[str]:
    """The alert rules the stack's Prometheus will load."""
    groups = render.alert_rules(spec.prometheus)["groups"]
    return {str(r["alert"]) for g in groups for r in g["rules"] if "alert" in r}


def served_models(spec: StackSpec) -> set[str]:
    """The served model names (an external stack: the one its spec names, if any)."""
    if spec.external is not None:
        return {spec.external.model} if spec.external.model else set()
    return {pool.server.served_name for pool in spec.pools().values()}


def _unknown(field: str, missing: list[str], what: str, known: set[str]) -> ConfigProblem:
    return ConfigProblem(
        field,
        f"unknown {', '.join(map(repr, missing))}; expected one of the stack's {what}: "
        f"{', '.join(sorted(known)) or '(none)'}",
    )


def load_problems(load: LoadSpec, spec: StackSpec, field: str = "load") -> list[ConfigProblem]:
    models = served_models(spec)
    if load.model is not None and models and load.model not in models:
        return [_unknown(f"{field}.model", [load.model], "served models (pools)", models)]
    return []


def experiment_problems(exp: ExperimentSpec, spec: StackSpec) -> list[ConfigProblem]:
    """Every name the experiment uses that this stack will not have."""
    from harness.stack.planner import stack_names

    ext = spec.external
    if ext is not None:  # its proxies are named in its spec; its alert rules are its own
        proxies = {
            p for names in (ext.toxiproxy.proxies if ext.toxiproxy else {}).values() for p in names
        }
        services: set[str] = set()
    else:
        proxies, services = stack_names(spec)
    problems: list[ConfigProblem] = []
    missing, what, known = unknown_targets(exp.fault, proxies, services)
    if ext is not None and (what != "Toxiproxy proxies" or ext.toxiproxy is None):
        # No process handles or fault parts there, or no Toxiproxy at all: the experiment is
        # skipped with that reason when it comes up. Only a proxy its Toxiproxy lacks is a typo.
        missing = []
    if missing:
        problems.append(_unknown("fault.targets", missing, what, known))
    rules = alert_names(spec) if ext is None else {a.alert for a in exp.expect.alerts}
    for i, want in enumerate(exp.expect.alerts):
        if want.alert not in rules:
            problems.append(
                _unknown(f"expect.alerts[{i}].alert", [want.alert], "alert rules", rules)
            )
    problems += load_problems(exp.load, spec)
    return problems


def check_experiments(experiments: list[tuple[Path, ExperimentSpec]], spec: StackSpec) -> None:
    """Raise one ConfigError for the first experiment file that names something unknown."""
    for path, exp in experiments:
        problems = experiment_problems(exp, spec)
        if problems:
            raise ConfigError(str(path), problems)
