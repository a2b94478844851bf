"""The `harness` command: parse, build the spec, call the pipeline, map the outcome to an exit code.

Exit codes: 0 pass / success, 1 gate failed, 2 could not run (bad configuration, missing tool,
stack did not start), 130 interrupted.
"""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer

from harness import __version__
from harness.errors import (
    ConfigError,
    ConfigProblem,
    HarnessError,
    StackError,
    ToolMissingError,
)
from harness.exit_codes import EXIT_CANNOT_RUN, EXIT_INTERRUPTED, EXIT_OK, exit_code
from harness.spec.files import load_stack_spec
from harness.spec.loader import load_yaml_model
from harness.spec.stack import StackSpec

if TYPE_CHECKING:
    from harness.gate_steps import ExperimentFile
    from harness.pipeline import GateRun
    from harness.spec.gate import GateSpec

app = typer.Typer(
    name="harness",
    help="Deploy gate for LLM serving stacks: bring the stack up, load it, break it, judge it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

StackOption = Annotated[
    Path | None,
    typer.Option("--stack", help="Stack spec (YAML). Default: the embedded reference stack."),
]
AllowEmptyOption = Annotated[
    bool,
    typer.Option(
        "--allow-empty", help="Take an empty spec file as all defaults (otherwise it is an error)."
    ),
]
AllowRemoteOption = Annotated[
    bool,
    typer.Option(
        "--allow-remote",
        help="Let an external stack spec name non-loopback addresses (load and faults go there).",
    ),
]
ProviderOption = Annotated[
    str | None, typer.Option("--provider", help="local (processes) or docker (containers).")
]


def err(msg: str) -> None:
    typer.echo(msg, err=True)


class _Terminated(KeyboardInterrupt):
    """SIGTERM, turned into an exception so every `finally` (teardown) runs."""


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise _Terminated()


def install_signal_handlers() -> None:
    signal.signal(signal.SIGTERM, _raise_terminated)


def version_callback(value: bool) -> None:
    if value:
        typer.echo(f"harness {__version__}")
        raise typer.Exit()


# Commands that start processes: each first removes what a dead harness left behind.
STARTING_COMMANDS = frozenset({"up", "gate", "chaos", "load", "capacity", "nightly"})


@app.callback()
def _root(
    ctx: typer.Context,
    version: Annotated[
        bool, typer.Option("--version", callback=version_callback, is_eager=True)
    ] = False,
) -> None:
    install_signal_handlers()
    if ctx.invoked_subcommand in STARTING_COMMANDS:
        from harness.stack.ownership import reap_dead_owners

        reap_dead_owners(progress=err)


@app.command()
def validate(
    files: Annotated[list[Path], typer.Argument(help="Spec files to check.")],
    stack: Annotated[
        Path | None,
        typer.Option(
            "--stack",
            help="Check experiments' names against this stack spec (default: the reference stack).",
        ),
    ] = None,
    allow_empty: AllowEmptyOption = False,
) -> None:
    """Check spec files without starting anything; exit 2 with file, field and reason if wrong.

    A gate profile's files (stack, experiments) must exist, and the names its experiments use
    (proxies, services, alert rules, models) must exist in its stack; an experiment's names
    are checked against --stack."""
    from harness.spec.kinds import validate_file

    bad = 0
    for f in files:
        try:
            kind = validate_file(f, allow_empty=allow_empty)
            note = _check_references(f, kind, stack, allow_empty)
        except ConfigError as exc:
            err(str(exc))
            bad += 1
            continue
        typer.echo(f"{f}: valid {kind} spec{note}")
    if bad:
        raise typer.Exit(EXIT_CANNOT_RUN)


def _check_references(path: Path, kind: str, stack: Path | None, allow_empty: bool) -> str:
    """The files and stack names a gate profile or experiment refers to; '' or a note."""
    from harness.spec.gate import GateSpec

    if kind == "gate":
        gate_spec = load_yaml_model(GateSpec, path, allow_empty=allow_empty)
        stack_spec, experiments = gate_inputs(gate_spec, path, stack, allow_empty)
        check_gate_load(gate_spec, stack_spec, path)
    elif kind == "experiment":
        from harness.spec.experiment import apply_stack_overrides

        experiments = load_experiments([path], allow_empty)
        overrides = [experiments[0].spec.stack_overrides]
        stack_spec = apply_stack_overrides(load_stack_spec(stack), overrides, str(path))
    else:
        return ""
    try:
        check_experiment_names(experiments, stack_spec)
    except ToolMissingError as exc:
        return f" (names in the stack not checked: {exc})"
    return ""


@app.command()
def up(
    stack: StackOption = None,
    ready_file: Annotated[
        Path | None,
        typer.Option("--ready-file", help="Write the endpoints here as JSON once ready."),
    ] = None,
    provider: ProviderOption = None,
    run_dir: Annotated[
        Path | None, typer.Option("--run-dir", help="Folder for logs and configs.")
    ] = None,
    allow_empty: AllowEmptyOption = False,
) -> None:
    """Bring the stack up, print its endpoints, and keep it up until Ctrl-C or SIGTERM."""
    from harness.stack import start_stack

    spec = load_stack_spec(stack, allow_empty)
    serving = False
    try:
        with start_stack(spec, run_dir=run_dir, provider=provider, progress=typer.echo) as running:
            ep = running.endpoints
            typer.echo(f"\nstack up in {running.startup_seconds:.1f}s (run folder {ep.run_dir})")
            typer.echo(f"  nginx        {ep.nginx}   (API key: {ep.api_key})")
            typer.echo(f"  gateways     {', '.join(ep.gateways)}")
            for pool, urls in ep.model_pools.items():
                typer.echo(f"  {pool:<12} {', '.join(urls)}")
            typer.echo(f"  prometheus   {ep.prometheus}")
            typer.echo(f"  alertmanager {ep.alertmanager}")
            typer.echo(f"  toxiproxy    {ep.toxiproxy}   proxies: {', '.join(ep.proxies)}")
            typer.echo(f"  redis        {ep.redis}")
            if ep.logs is not None:
                from harness.observe.logs import how_to_query

                typer.echo("\n".join(how_to_query(ep.logs)))
            if ready_file is not None:
                ep.write(ready_file)
                typer.echo(f"endpoints written to {ready_file}")
            typer.echo("Ctrl-C or SIGTERM stops the stack.")
            serving = True
            _watch(running)
    except KeyboardInterrupt:
        if ready_file is not None:
            ready_file.unlink(missing_ok=True)
        if not serving:
            err("interrupted during start-up; stack torn down")
            raise typer.Exit(EXIT_INTERRUPTED) from None
        typer.echo("stack stopped")


@app.command()
def gate(
    profile: Annotated[
        Path | None,
        typer.Option(
            "--profile", help="Gate profile (YAML). Default: reports/profiles/default.yaml."
        ),
    ] = None,
    stack: StackOption = None,
    provider: ProviderOption = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Report folder. Default: reports/runs/<time>-gate.")
    ] = None,
    history: Annotated[
        Path | None,
        typer.Option(
            "--history",
            help="History file (JSON lines) to compare with and append to. "
            "Default: reports/runs/history/<profile name>.jsonl.",
        ),
    ] = None,
    no_history: Annotated[
        bool, typer.Option("--no-history", help="Neither compare with nor record history.")
    ] = False,
    allow_empty: AllowEmptyOption = False,
    allow_remote: AllowRemoteOption = False,
) -> None:
    """Bring the stack up, run the gate checks, write the reports. Exit 0 pass, 1 fail, 2 error."""
    from harness.paths import PROJECT_ROOT, new_run_dir
    from harness.pipeline import run_gate

    default_profile = PROJECT_ROOT / "reports" / "profiles" / "default.yaml"
    profile_path = profile or (default_profile if default_profile.is_file() else None)
    gate_spec, stack_spec, experiments = prepare_gate(profile_path, stack, allow_empty)
    check_external(stack_spec, stack, allow_remote)
    out_dir = out or new_run_dir("gate")
    from harness.paths import runs_dir

    history_file = None if no_history else (
        history or runs_dir() / "history" / f"{gate_spec.name}.jsonl"
    )  # fmt: skip
    command = "harness " + " ".join(sys.argv[1:])
    _run_and_print("gate", out_dir, lambda: run_gate(
        gate_spec, stack_spec, out_dir=out_dir, provider=provider, command=command,
        progress=typer.echo, experiments=experiments, history=history_file,
        allow_remote=allow_remote,
    ))  # fmt: skip


@app.command()
def chaos(
    files: Annotated[list[Path], typer.Argument(help="Experiment files (YAML, kind: experiment).")],
    stack: StackOption = None,
    provider: ProviderOption = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Report folder. Default: reports/runs/<time>-chaos."),
    ] = None,
    allow_empty: AllowEmptyOption = False,
    allow_remote: AllowRemoteOption = False,
) -> None:
    """Run chaos experiments on one stack: load, a fault, expectations before/during/after it.

    `harness chaos list [FILE|DIR...]` shows each experiment's title, fault and expectations
    (default: chaos/)."""
    from harness.paths import new_run_dir
    from harness.pipeline import run_chaos
    from harness.spec.experiment import apply_stack_overrides

    if files and str(files[0]) == "list" and not files[0].exists():
        _chaos_list(files[1:], allow_empty)
        return
    experiments = load_experiments(files, allow_empty)
    stack_spec = apply_stack_overrides(
        load_stack_spec(stack, allow_empty),
        [exp.spec.stack_overrides for exp in experiments],
        f"stack_overrides of {', '.join(map(str, files))}",
    )
    check_experiment_names(experiments, stack_spec)
    check_external(stack_spec, stack, allow_remote)
    out_dir = out or new_run_dir("chaos")
    command = "harness " + " ".join(sys.argv[1:])
    _run_and_print("chaos", out_dir, lambda: run_chaos(
        experiments, stack_spec, out_dir=out_dir, provider=provider, command=command,
        progress=typer.echo, allow_remote=allow_remote,
    ))  # fmt: skip


def _chaos_list(paths: list[Path], allow_empty: bool) -> None:
    from harness.chaos_list import describe, experiment_files

    experiments = load_experiments(experiment_files(paths), allow_empty)
    for i, exp in enumerate(experiments):
        typer.echo(("\n" if i else "") + "\n".join(describe(exp.path, exp.spec)))


@app.command()
def report(
    path: Annotated[Path, typer.Argument(help="A run folder or its report.json.")],
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Write every rendering here (default: beside report.json)."),
    ] = None,
) -> None:
    """Render a stored report again (summary.md, junit.xml, report.html with this version's
    plots), print its summary, and exit with its exit code."""
    from pydantic import ValidationError

    from harness.report.model import RunReport
    from harness.report.render_text import render_markdown
    from harness.report.write import render_files, write_reports

    source = path / "report.json" if path.is_dir() else path
    try:
        stored = RunReport.model_validate_json(source.read_bytes())  # bytes: bad UTF-8 is a 2
    except OSError as exc:
        raise ConfigError(
            str(source), [ConfigProblem("", f"cannot read: {exc.strerror}")]
        ) from None
    except ValidationError as exc:
        problems = [
            ConfigProblem(".".join(str(x) for x in e["loc"]), f"not a harness report: {e['msg']}")
            for e in exc.errors()[:5]
        ]
        raise ConfigError(str(source), problems) from None
    if out is None:
        written = render_files(stored, source.parent)
    else:
        written = list(write_reports(stored, out).values())
    typer.echo(render_markdown(stored))
    typer.echo("written: " + ", ".join(str(p) for p in written))
    raise typer.Exit(exit_code(stored.outcome))


def prepare_gate(
    profile_path: Path | None, stack: Path | None, allow_empty: bool
) -> tuple[GateSpec, StackSpec, list[ExperimentFile]]:
    """A gate profile with its stack and experiments, every file and name checked."""
    from harness.spec.gate import GateSpec

    gate_spec = (
        load_yaml_model(GateSpec, profile_path, allow_empty=allow_empty)
        if profile_path
        else GateSpec()
    )
    stack_spec, experiments = gate_inputs(gate_spec, profile_path, stack, allow_empty)
    from harness.spec.experiment import apply_stack_overrides

    for exp in experiments:
        # Overrides the gate's stack already satisfies change nothing: those run.
        overrides = exp.spec.stack_overrides
        if (
            overrides
            and apply_stack_overrides(stack_spec, [overrides], str(exp.path)) != stack_spec
        ):
            raise ConfigError(str(exp.path), [ConfigProblem(
                "stack_overrides", "not allowed in a gate profile's experiments unless the gate's "
                "stack already has them (they run on the gate's stack): put the settings in the "
                "stack spec, or run it with `harness chaos`",
            )])  # fmt: skip
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
        raise ConfigError(str(profile or "gate profile"), [ConfigProblem(
            "policy.alerts.rule_tests", f"file not found: {path} (relative to the profile)",
        )])  # fmt: skip
    alerts = gate_spec.policy.alerts.model_copy(update={"rule_tests": str(path)})
    policy = gate_spec.policy.model_copy(update={"alerts": alerts})
    return gate_spec.model_copy(update={"policy": policy})


def load_experiments(paths: list[Path], allow_empty: bool = False) -> list[ExperimentFile]:
    from harness.gate_steps import ExperimentFile
    from harness.spec.experiment import ExperimentSpec

    return [
        ExperimentFile(p, load_yaml_model(ExperimentSpec, p, allow_empty=allow_empty))
        for p in paths
    ]


def gate_inputs(
    gate_spec: GateSpec, profile_path: Path | None, stack: Path | None, allow_empty: bool
) -> tuple[StackSpec, list[ExperimentFile]]:
    """The stack and experiments a gate profile names, relative to the profile's folder: every
    named file must exist (the field that names it is reported if not)."""
    from harness.spec.loader import referenced_file

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


def _run_and_print(label: str, out_dir: Path, run: Callable[[], GateRun]) -> None:
    """Run a gate or chaos pipeline; an interrupt still leaves its partial report (exit 130)."""
    try:
        result = run()
    except KeyboardInterrupt:
        err(f"interrupted; partial report in {out_dir}")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    _print_outcome(result, label)


def _print_outcome(run: GateRun, label: str) -> None:
    print_outcome(run, label)
    raise typer.Exit(run.exit_code)


def print_outcome(run: GateRun, label: str) -> None:
    report = run.report
    typer.echo("")
    typer.echo(f"{label} {report.outcome.upper()} in {report.duration_s:.1f}s: " + ", ".join(
        f"{n} {k}" for k, n in sorted(report.counts().items())))  # fmt: skip
    for c in report.checks:
        if c.outcome in ("fail", "error", "warn"):
            typer.echo(f"  {c.outcome.upper():5} {c.name}: {'; '.join(c.reasons)}")
    for e in report.errors:
        typer.echo(f"  ERROR {e}")
    typer.echo(f"reports: {run.paths['html']} (also report.json, junit.xml, summary.md)")


def _watch(running: object) -> None:
    """Block until a signal; report a service that dies meanwhile (but keep the rest up)."""
    from harness.stack.provider import RunningStack

    assert isinstance(running, RunningStack)
    reported: set[str] = set()
    while True:
        for name, svc in running.services.items():
            if name not in reported and not svc.alive():
                reported.add(name)
                err(f"warning: {name} exited (code {svc.exit_code()}); log: {svc.log_tail(5)}")
        time.sleep(1.0)


def _register_subcommands() -> None:
    from harness.compare.cli import register as register_compare
    from harness.images.cli import register as register_images
    from harness.load.cli import register as register_load

    register_load(app)
    register_images(app)
    register_compare(app)


_register_subcommands()


def main() -> None:
    try:
        rc = app(standalone_mode=False)
    except ConfigError as exc:
        err(str(exc))
        sys.exit(EXIT_CANNOT_RUN)
    except ToolMissingError as exc:
        err(f"error: {exc}")
        sys.exit(EXIT_CANNOT_RUN)
    except StackError as exc:
        err(f"error: {exc}")
        sys.exit(EXIT_CANNOT_RUN)
    except HarnessError as exc:
        err(f"error: {exc}")
        sys.exit(EXIT_CANNOT_RUN)
    except KeyboardInterrupt:
        err("interrupted")
        sys.exit(EXIT_INTERRUPTED)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:
        # Usage errors from typer's click arrive here in non-standalone mode.
        if type(exc).__name__ == "Abort":
            err("interrupted")
            sys.exit(EXIT_INTERRUPTED)
        show = getattr(exc, "show", None)
        if callable(show):
            show()
            sys.exit(EXIT_CANNOT_RUN)
        # A crash of the harness itself is "could not run" (2), never a verdict (1).
        import traceback

        traceback.print_exc()
        err(f"error: the harness crashed ({type(exc).__name__}: {exc}); this is a bug")
        sys.exit(EXIT_CANNOT_RUN)
    sys.exit(rc if isinstance(rc, int) else EXIT_OK)
