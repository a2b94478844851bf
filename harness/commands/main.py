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
from harness.commands.common import err, print_outcome
from harness.errors import (
    ConfigError,
    ConfigProblem,
    HarnessError,
    StackError,
    ToolMissingError,
)
from harness.exit_codes import EXIT_CANNOT_RUN, EXIT_INTERRUPTED, EXIT_OK, exit_code
from harness.gate.prepare import (
    check_experiment_names,
    check_external,
    check_gate_load,
    gate_inputs,
    load_experiments,
    prepare_gate,
)
from harness.spec.files import load_stack_spec
from harness.spec.loader import load_yaml_model, referenced_file

if TYPE_CHECKING:
    from harness.gate.pipeline import GateRun
    from harness.spec.stack import StackSpec

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
StandInOption = Annotated[
    str | None,
    typer.Option(
        "--stand-in",
        help="Serve the stack's vllm pools with this instead (simulator: no GPU, local "
        "processes; same served names, pools and metric names). See docs/gpu.md.",
    ),
]


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
STARTING_COMMANDS = frozenset(
    {"up", "gate", "chaos", "rollout", "load", "capacity", "nightly", "gpu-check"}
)


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
        if gate_spec.rollout is not None:  # the versions are given when the gate runs
            from harness.spec.rollout import RolloutSpec

            rollout = referenced_file(path, "rollout.profile", gate_spec.rollout.profile)
            load_yaml_model(RolloutSpec, rollout, allow_empty=allow_empty)
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
    stand_in: StandInOption = None,
) -> None:
    """Bring the stack up, print its endpoints, and keep it up until Ctrl-C or SIGTERM."""
    from harness.stack import start_stack

    spec = _with_stand_in(load_stack_spec(stack, allow_empty), stand_in)
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
    stand_in: StandInOption = None,
    baseline: Annotated[
        Path | None,
        typer.Option(
            "--baseline",
            help="Stack spec of the running version, for a profile with a rollout step "
            "(`rollout:`): the stack (--stack) is the candidate rolled out from it.",
        ),
    ] = None,
) -> None:
    """Bring the stack up, run the gate checks, write the reports. Exit 0 pass, 1 fail, 2 error.

    A profile with a rollout step then rolls the stack out from the running version (--baseline),
    both brought up side by side once the gate's own stack is down (docs/rollout.md)."""
    from harness.gate.pipeline import run_gate
    from harness.gate.prepare import gate_rollout
    from harness.paths import PROJECT_ROOT, new_run_dir

    default_profile = PROJECT_ROOT / "reports" / "profiles" / "default.yaml"
    profile_path = profile or (default_profile if default_profile.is_file() else None)
    gate_spec, stack_spec, experiments = prepare_gate(profile_path, stack, allow_empty)
    stack_spec = _with_stand_in(stack_spec, stand_in)
    check_external(stack_spec, stack, allow_remote)
    rollout_plan = gate_rollout(
        gate_spec,
        profile_path,
        stack,
        stack_spec,
        baseline,
        allow_empty=allow_empty,
        provider=provider,
        allow_remote=allow_remote,
        stand_in=stand_in,
    )
    out_dir = out or new_run_dir("gate")
    from harness.paths import runs_dir

    history_file = (
        None if no_history else (history or runs_dir() / "history" / f"{gate_spec.name}.jsonl")
    )
    command = "harness " + " ".join(sys.argv[1:])
    _run_and_print(
        "gate",
        out_dir,
        lambda: run_gate(
            gate_spec,
            stack_spec,
            out_dir=out_dir,
            provider=provider,
            command=command,
            progress=typer.echo,
            experiments=experiments,
            history=history_file,
            allow_remote=allow_remote,
            rollout=rollout_plan,
        ),
    )


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
    from harness.gate.pipeline import run_chaos
    from harness.paths import new_run_dir
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
    _run_and_print(
        "chaos",
        out_dir,
        lambda: run_chaos(
            experiments,
            stack_spec,
            out_dir=out_dir,
            provider=provider,
            command=command,
            progress=typer.echo,
            allow_remote=allow_remote,
        ),
    )


@app.command()
def rollout(
    baseline: Annotated[
        Path | None,
        typer.Option(
            "--baseline",
            help="Stack spec of the running version (YAML); an external deployment with hooks "
            "needs none (its --candidate spec serves both).",
        ),
    ] = None,
    candidate: Annotated[
        Path | None,
        typer.Option(
            "--candidate",
            help="Stack spec of the new version (YAML); a scale_out needs none (the baseline's).",
        ),
    ] = None,
    baseline_url: Annotated[
        str | None,
        typer.Option(
            "--baseline-url",
            help="The running version's own URL (an external stack with the defaults): with "
            "--candidate-url, compare the two for one step, moving nothing (Argo Rollouts).",
        ),
    ] = None,
    candidate_url: Annotated[
        str | None,
        typer.Option("--candidate-url", help="The new version's own URL (see --baseline-url)."),
    ] = None,
    profile: Annotated[
        Path | None,
        typer.Option(
            "--profile",
            help="Rollout profile (YAML, kind: rollout). Default: rollouts/canary.yaml.",
        ),
    ] = None,
    strategy: Annotated[
        str | None,
        typer.Option(
            "--strategy", help="canary, blue_green, rolling or scale_out (default: the profile's)."
        ),
    ] = None,
    provider: ProviderOption = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Report folder. Default: reports/runs/<time>-rollout."),
    ] = None,
    allow_empty: AllowEmptyOption = False,
    allow_remote: AllowRemoteOption = False,
) -> None:
    """Roll out a candidate beside the running baseline: traffic moved step by step (canary) or
    all at once and back (blue-green), each step judged against the baseline, every stream of
    every move counted. An external deployment's traffic is moved by its own hooks."""
    from harness.gate.pipeline import run_rollout_gate
    from harness.gate.prepare import rollout_inputs
    from harness.paths import new_run_dir

    spec, base, cand = rollout_inputs(
        profile,
        baseline,
        candidate,
        strategy,
        allow_empty,
        provider,
        baseline_url=baseline_url,
        candidate_url=candidate_url,
        allow_remote=allow_remote,
    )
    out_dir = out or new_run_dir("rollout")
    command = "harness " + " ".join(sys.argv[1:])
    _run_and_print(
        "rollout",
        out_dir,
        lambda: run_rollout_gate(
            spec,
            base,
            cand,
            out_dir=out_dir,
            provider=provider,
            command=command,
            progress=typer.echo,
            allow_remote=allow_remote,
        ),
    )


def _chaos_list(paths: list[Path], allow_empty: bool) -> None:
    from harness.chaos.catalog import describe, experiment_files

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


def _with_stand_in(spec: StackSpec, stand_in: str | None) -> StackSpec:
    if stand_in is None:
        return spec
    from harness.spec.stand_in import stand_in as replace_vllm

    return replace_vllm(spec, stand_in)


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
    from harness.commands.compare import register as register_compare
    from harness.commands.gpu import register as register_gpu
    from harness.commands.images import register as register_images
    from harness.commands.load import register as register_load

    register_load(app)
    register_images(app)
    register_compare(app)
    register_gpu(app)


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
