"""A gate's inputs before anything starts: the profile with its stack and experiments, every
file it names found and every name it uses checked against the stack."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from harness.errors import ConfigError, ConfigProblem
from harness.spec.experiment import ExperimentSpec, apply_stack_overrides
from harness.spec.files import load_stack_spec
from harness.spec.gate import GateSpec
from harness.spec.loader import load_yaml_model, referenced_file
from harness.spec.rollout import RolloutSpec
from harness.spec.stack import StackSpec

if TYPE_CHECKING:
    # The steps import the whole gate; a command that only checks its inputs need not.
    from harness.gate.external_rollout import StackArg
    from harness.gate.rollout_step import RolloutPlan
    from harness.gate.steps import ExperimentFile


def prepare_gate(
    profile_path: Path | None, stack: Path | None, allow_empty: bool
) -> tuple[GateSpec, StackSpec, list[ExperimentFile]]:
    """A gate profile with its stack and experiments, every file and name checked."""

    gate_spec = (
        load_yaml_model(GateSpec, profile_path, allow_empty=allow_empty)
        if profile_path
        else GateSpec()
    )
    stack_spec, experiments = gate_inputs(gate_spec, profile_path, stack, allow_empty)

    for exp in experiments:
        # Overrides the gate's stack already satisfies change nothing: those run.
        overrides = exp.spec.stack_overrides
        if (
            overrides
            and apply_stack_overrides(stack_spec, [overrides], str(exp.path)) != stack_spec
        ):
            raise ConfigError(
                str(exp.path),
                [
                    ConfigProblem(
                        "stack_overrides",
                        "not allowed in a gate profile's experiments unless the gate's "
                        "stack already has them (they run on the gate's stack): put the "
                        "settings in the stack spec, or run it with `harness chaos`",
                    )
                ],
            )
    check_experiment_names(experiments, stack_spec)
    check_gate_load(gate_spec, stack_spec, profile_path)
    base = profile_path.parent if profile_path is not None else Path.cwd()
    return resolve_rule_tests(gate_spec, base, profile_path), stack_spec, experiments


def resolve_rule_tests(gate_spec: GateSpec, base: Path, profile: Path | None) -> GateSpec:
    """The policy's promtool tests, relative to the profile; a missing file is a config error."""
    name = gate_spec.policy.alerts.rule_tests
    if not name:
        return gate_spec
    path = (base / name).resolve()
    if not path.is_file():
        raise ConfigError(
            str(profile or "gate profile"),
            [
                ConfigProblem(
                    "policy.alerts.rule_tests",
                    f"file not found: {path} (relative to the profile)",
                )
            ],
        )
    alerts = gate_spec.policy.alerts.model_copy(update={"rule_tests": str(path)})
    policy = gate_spec.policy.model_copy(update={"alerts": alerts})
    return gate_spec.model_copy(update={"policy": policy})


def load_experiments(paths: list[Path], allow_empty: bool = False) -> list[ExperimentFile]:
    from harness.gate.steps import ExperimentFile

    return [
        ExperimentFile(p, load_yaml_model(ExperimentSpec, p, allow_empty=allow_empty))
        for p in paths
    ]


def gate_inputs(
    gate_spec: GateSpec, profile_path: Path | None, stack: Path | None, allow_empty: bool
) -> tuple[StackSpec, list[ExperimentFile]]:
    """The stack and experiments a gate profile names, relative to the profile's folder: every
    named file must exist (the field that names it is reported if not)."""

    stack_path = stack
    experiment_paths = [Path(p) for p in gate_spec.experiments]
    if profile_path is not None:
        if stack_path is None and gate_spec.stack:
            stack_path = referenced_file(profile_path, "stack", gate_spec.stack)
        experiment_paths = [
            referenced_file(profile_path, f"experiments[{i}]", p)
            for i, p in enumerate(gate_spec.experiments)
        ]
    return load_stack_spec(stack_path, allow_empty), load_experiments(experiment_paths, allow_empty)


def check_gate_load(gate_spec: GateSpec, stack_spec: StackSpec, profile: Path | None) -> None:
    """The gate's own load may name a model: one of the stack's pools must serve it."""
    from harness.stack.names import load_problems

    if gate_spec.load is not None and (problems := load_problems(gate_spec.load, stack_spec)):
        raise ConfigError(str(profile or "the default gate profile"), problems)


def check_external(spec: StackSpec, path: Path | None, allow_remote: bool) -> None:
    """Before anything runs: an external stack's secrets are in the environment and its
    addresses are on loopback (or `--allow-remote` says otherwise)."""
    if spec.external is None:
        return
    from harness.stack.external import check_env, check_remote

    check_env(spec.external, str(path))
    check_remote(spec.external.urls(), allow_remote, str(path))


def check_experiment_names(experiments: list[ExperimentFile], spec: StackSpec) -> None:
    """Before anything starts: every name an experiment uses exists in this stack."""
    from harness.stack.names import check_experiments

    check_experiments([(exp.path, exp.spec) for exp in experiments], spec)


def _stack_arg(
    version: str, path: Path | None, url: str | None, allow_empty: bool
) -> tuple[str, StackSpec | None]:
    """A version's stack spec from its file or its URL (where it came from, and the spec)."""
    from harness.gate.external_rollout import url_stack

    if path is not None and url is not None:
        raise ConfigError(
            f"--{version}-url", [ConfigProblem(version, f"give --{version} or --{version}-url")]
        )
    if url is not None:
        return f"--{version}-url", url_stack(version, url, f"--{version}-url")
    if path is not None:
        return str(path), load_stack_spec(path, allow_empty)
    return f"--{version}", None


def rollout_inputs(
    profile: Path | None,
    baseline: Path | None,
    candidate: Path | None,
    strategy: str | None,
    allow_empty: bool = False,
    provider: str | None = None,
    *,
    baseline_url: str | None = None,
    candidate_url: str | None = None,
    allow_remote: bool = False,
) -> tuple[RolloutSpec, StackSpec, StackSpec]:
    """A rollout's profile and its two stacks, checked before anything starts: both versions
    started by the harness, by the same provider, and the load's key accepted by both; or an
    external deployment (`gate/external_rollout.py`)."""
    from harness.paths import PROJECT_ROOT

    path = profile or PROJECT_ROOT / "rollouts" / "canary.yaml"
    spec = load_yaml_model(RolloutSpec, path, allow_empty=allow_empty)
    if strategy is not None:
        if strategy not in ("canary", "blue_green", "rolling", "scale_out"):
            raise ConfigError(
                "--strategy",
                [
                    ConfigProblem(
                        "strategy",
                        f"{strategy!r}; expected canary, blue_green, rolling or scale_out",
                    )
                ],
            )
        spec = spec.model_copy(update={"strategy": strategy})
    base_arg = _stack_arg("baseline", baseline, baseline_url, allow_empty)
    cand_arg = _stack_arg("candidate", candidate, candidate_url, allow_empty)
    if candidate is None and candidate_url is None and spec.strategy == "scale_out":
        cand_arg = base_arg  # a scale-out adds replicas of the baseline's own
    base, cand = rollout_versions(
        spec,
        path,
        base_arg,
        cand_arg,
        provider,
        allow_remote,
        strategy_src="--strategy" if strategy else None,
    )
    return spec, base, cand


def rollout_versions(
    spec: RolloutSpec,
    path: Path,
    base_arg: StackArg,
    cand_arg: StackArg,
    provider: str | None,
    allow_remote: bool,
    strategy_src: str | None = None,
) -> tuple[StackSpec, StackSpec]:
    """The two versions of a rollout, each with where it came from, checked against each other
    and the profile (`harness rollout`, and a gate's rollout step)."""
    from harness.gate.external_rollout import external_inputs

    if any(s is not None and s.external is not None for _, s in (base_arg, cand_arg)):
        return external_inputs(
            spec, path, base_arg, cand_arg, provider, allow_remote, strategy_src=strategy_src
        )
    (base_src, base), (cand_src, cand) = base_arg, cand_arg
    if base is None:
        raise ConfigError(
            "--baseline",
            [
                ConfigProblem(
                    "baseline",
                    "the running version's stack spec (for an external deployment: its spec "
                    "with hooks as --candidate, or --baseline-url and --candidate-url)",
                )
            ],
        )
    if cand is None:
        raise ConfigError(
            "--candidate",
            [
                ConfigProblem(
                    "candidate", f"a {spec.strategy} rollout needs the new version's stack spec"
                )
            ],
        )
    if spec.strategy == "rolling":
        _check_rolling(cand_src, base, cand)
    for src, s in ((base_src, base), (cand_src, cand)):
        _check_rate_limit(spec, path, src, s)
    if base.provider != cand.provider:
        raise ConfigError(
            cand_src,
            [
                ConfigProblem(
                    "provider",
                    f"{cand.provider!r}, but the baseline's is {base.provider!r}: both versions "
                    "run under one provider",
                )
            ],
        )
    return base, cand


def gate_rollout(
    gate_spec: GateSpec,
    profile_path: Path | None,
    stack: Path | None,
    candidate: StackSpec,
    baseline: Path | None,
    *,
    allow_empty: bool = False,
    provider: str | None = None,
    allow_remote: bool = False,
    stand_in: str | None = None,
) -> RolloutPlan | None:
    """A gate profile's rollout step, checked before anything starts. The gate's stack is the
    candidate and `baseline` (`--baseline`) the running version; a scale-out scales the gate's
    stack itself, and an external deployment with hooks serves both versions: neither takes one.
    `stand_in` serves the baseline's vllm pools as the gate's own (`--stand-in`)."""
    from harness.gate.rollout_step import RolloutPlan

    source = str(profile_path or "the default gate profile")
    if gate_spec.rollout is None or profile_path is None:
        if baseline is not None:
            raise ConfigError(
                "--baseline",
                [
                    ConfigProblem(
                        "rollout",
                        f"{source} asks for no rollout step (`rollout: {{profile: FILE}}`): "
                        "--baseline is the running version a rollout starts from",
                    )
                ],
            )
        return None
    path = referenced_file(profile_path, "rollout.profile", gate_spec.rollout.profile)
    spec = load_yaml_model(RolloutSpec, path, allow_empty=allow_empty)
    if stack is None and gate_spec.stack:
        stack = referenced_file(profile_path, "stack", gate_spec.stack)
    cand_arg: StackArg = (str(stack or "the reference stack"), candidate)
    hooks = candidate.external is not None and candidate.external.rollout is not None
    base_arg: StackArg
    if spec.strategy == "scale_out":
        if baseline is not None:
            raise ConfigError(
                "--baseline",
                [
                    ConfigProblem(
                        "rollout",
                        f"{path} is a scale_out, which scales the gate's own stack (the "
                        "candidate) under a burst: leave --baseline out",
                    )
                ],
            )
        base_arg = cand_arg
    elif baseline is not None:
        base = load_stack_spec(baseline, allow_empty)
        if stand_in is not None and any(p.server.kind == "vllm" for p in base.pools().values()):
            from harness.spec.stand_in import stand_in as replace_vllm

            base = replace_vllm(base, stand_in)
        base_arg = (str(baseline), base)
    elif hooks:
        base_arg = ("--baseline", None)  # the deployment's running version is its baseline
    else:
        raise ConfigError(
            source,
            [
                ConfigProblem(
                    "rollout",
                    f"asks for a {spec.strategy} rollout ({path}), which starts from the running "
                    "version: give its stack spec with --baseline (the gate's stack is the "
                    "candidate)",
                )
            ],
        )
    base_spec, cand_spec = rollout_versions(spec, path, base_arg, cand_arg, provider, allow_remote)
    return RolloutPlan(spec, base_spec, cand_spec, path)


def _check_rolling(source: str, base: StackSpec, cand: StackSpec) -> None:
    """A rolling update replaces the baseline's primary model servers one for one with the
    candidate's: the candidate may differ in that server's settings and nothing else."""

    def rest(spec: StackSpec) -> dict[str, object]:
        out = spec.model_dump(mode="json", exclude={"name"})
        out["primary"]["server"] = {"served_name": spec.primary.server.served_name}
        return out

    b, c = rest(base), rest(cand)
    if b != c:
        differs = sorted(k for k in b if b[k] != c[k])
        raise ConfigError(
            source,
            [
                ConfigProblem(
                    ", ".join(differs),
                    "a rolling update replaces the baseline's primary model servers one for one "
                    "with the candidate's `primary.server` (same served_name); the candidate "
                    "differs from the baseline here too (use canary or blue_green for that)",
                )
            ],
        )


def _check_rate_limit(spec: RolloutSpec, profile: Path, stack_file: str, stack: StackSpec) -> None:
    """An open-loop rollout load above a version's per-key rate limit would be refused (429) by
    the version itself, and every move would count the refusals: said before anything starts."""
    from harness.spec.load import OpenLoop

    limit = stack.gateway.settings.rate_limit
    load = spec.load.load
    if stack.external is not None or not limit.enabled or not isinstance(load, OpenLoop):
        return
    peak = load.rate_rps * (
        spec.load.shape.spike_multiplier if spec.load.shape.kind == "spike" else 1
    )
    if peak * 60 > limit.requests_per_minute and not spec.load.workload.tenants:
        raise ConfigError(
            str(profile),
            [
                ConfigProblem(
                    "load.load.rate_rps",
                    f"up to {peak:g} requests/s on one API key, {peak * 60:,.0f} a minute, but "
                    f"{stack_file} limits a key to {limit.requests_per_minute} a minute: the "
                    "version would refuse the rollout's own load. Lower the rate, or raise "
                    "gateway.settings.rate_limit.requests_per_minute in both stack specs",
                )
            ],
        )
