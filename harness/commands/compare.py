"""`harness compare`, `harness baseline set|show` and `harness nightly`: their options and
output over `compare_runs`, the history folder and `harness.nightly.run`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from harness.errors import ConfigError, ConfigProblem
from harness.exit_codes import EXIT_CANNOT_RUN, EXIT_FAIL, EXIT_INTERRUPTED, EXIT_OK, exit_code

if TYPE_CHECKING:
    from harness.spec.compare import CompareSpec

HistoryOpt = Annotated[
    Path,
    typer.Option(
        "--history",
        help="History folder: the pinned baseline, the runs' records and samples, the trend "
        "page. Point CI's cache or artifact at it.",
    ),
]
ProfileOpt = Annotated[
    Path | None,
    typer.Option("--profile", help="Gate profile whose `compare:` section applies."),
]


def _compare_spec(
    profile: Path | None,
    min_effect: float | None,
    min_effect_pp: float | None = None,
    fallback: CompareSpec | None = None,
) -> CompareSpec:
    """The `compare:` section of --profile, else `fallback`, else the defaults; --min-effect
    and --min-effect-pp over any of them."""
    from harness.spec.compare import CompareSpec
    from harness.spec.gate import GateSpec
    from harness.spec.loader import load_yaml_model

    spec = fallback or CompareSpec()
    if profile is not None:
        spec = load_yaml_model(GateSpec, profile).compare
    for option, field, value, unit in (
        ("--min-effect", "min_effect_pct", min_effect, "a percentage"),
        ("--min-effect-pp", "min_effect_pp", min_effect_pp, "percentage points"),
    ):
        if value is None:
            continue
        if not 0 < value < 100:
            problem = ConfigProblem("", f"{value}: expected {unit} between 0 and 100")
            raise ConfigError(option, [problem])
        spec = spec.model_copy(update={field: value})
    return spec


def register(app: typer.Typer) -> None:
    baseline = typer.Typer(
        help="The pinned baseline a nightly run is compared with.", no_args_is_help=True
    )
    app.add_typer(baseline, name="baseline")

    @app.command()
    def compare(
        run_a: Annotated[Path, typer.Argument(help="Run A, the baseline: folder or report.json.")],
        run_b: Annotated[Path, typer.Argument(help="Run B, the candidate.")],
        profile: ProfileOpt = None,
        min_effect: Annotated[
            float | None,
            typer.Option(
                "--min-effect",
                help="Smallest change that matters, in % "
                "(default: the profile's, else B's own profile's, else 10).",
            ),
        ] = None,
        min_effect_pp: Annotated[
            float | None,
            typer.Option(
                "--min-effect-pp",
                help="Smallest change of a rate (errors, fallback, degraded) that matters, in "
                "percentage points (default: the profile's, else B's own profile's, else 1).",
            ),
        ] = None,
        out: Annotated[
            Path | None,
            typer.Option(
                "--out",
                help="Folder for compare.md/.html/.json. Default: reports/runs/<time>-compare.",
            ),
        ] = None,
    ) -> None:
        """Compare two runs request by request: per figure, the change of the median and p95
        with bootstrap intervals, Mann-Whitney U, Kolmogorov-Smirnov, an effect size and a label
        (regressed / improved / same / inconclusive); the error rate and the fallback and
        degraded shares in percentage points with an interval, Fisher's test and the same
        labels. Exit 1 on a blocking regression."""
        from harness.compare.runs import load_run
        from harness.compare.runs_compare import compare_runs, spec_of
        from harness.paths import new_run_dir
        from harness.report.compare_page import render_compare_markdown, write_comparison

        # A bad option is reported before reading runs.
        _compare_spec(profile, min_effect, min_effect_pp)
        a, b = load_run(run_a), load_run(run_b)
        spec = _compare_spec(profile, min_effect, min_effect_pp, spec_of(b))
        result = compare_runs(a, b, spec)
        written = write_comparison(result, a, b, out or new_run_dir("compare"))
        typer.echo(render_compare_markdown(result))
        typer.echo("written: " + ", ".join(map(str, written)))
        raise typer.Exit(exit_code(result.verdict))

    @baseline.command("set")
    def baseline_set(
        run: Annotated[Path, typer.Argument(help="The run to pin: folder or report.json.")],
        history: HistoryOpt,
        profile: ProfileOpt = None,
        why: Annotated[
            str, typer.Option("--why", help="Recorded with the baseline.")
        ] = "set by hand",
        allow_failed_gate: Annotated[
            bool,
            typer.Option(
                "--allow-failed-gate",
                help="Pin a run whose gate failed (for example on an experiment); its samples "
                "must still not regress.",
            ),
        ] = False,
    ) -> None:
        """Pin RUN as the baseline in the history folder. Refused (exit 1) when its gate did not
        pass or it regressed against the current baseline or in the history."""
        from harness.compare.runs import load_run
        from harness.compare.runs_compare import spec_of
        from harness.nightly.run import BaselineRefused, set_baseline

        stored = load_run(run)
        try:
            pinned = set_baseline(
                history,
                stored,
                _compare_spec(profile, None, None, spec_of(stored)),
                why,
                allow_failed_gate,
            )
        except BaselineRefused as exc:
            typer.echo(f"refused: {exc}", err=True)
            raise typer.Exit(EXIT_FAIL) from None
        typer.echo(f"baseline pinned: {pinned.run} ({pinned.started_at}) in {history}/baseline")

    @baseline.command("show")
    def baseline_show(history: HistoryOpt) -> None:
        """Print the pinned baseline of the history folder (exit 1 when there is none)."""
        from harness.measure.history import pinned

        p = pinned(history)
        if p is None:
            typer.echo(f"no baseline pinned in {history}")
            raise typer.Exit(EXIT_FAIL)
        typer.echo(p.model_dump_json(indent=2))

    @app.command()
    def nightly(
        history: HistoryOpt,
        profile: Annotated[
            Path | None,
            typer.Option("--profile", help="Default: reports/profiles/nightly.yaml."),
        ] = None,
        stack: Annotated[Path | None, typer.Option("--stack", help="Stack spec.")] = None,
        provider: Annotated[str | None, typer.Option("--provider")] = None,
        out: Annotated[
            Path | None,
            typer.Option("--out", help="Report folder. Default: reports/runs/<time>-nightly."),
        ] = None,
    ) -> None:
        """Run the gate with the nightly profile, compare it with the pinned baseline and the
        last accepted run, append it to the history, write the trend page. Exit 0 pass, 1 the
        gate failed or a blocking figure regressed, 2 could not run."""
        from harness.commands.common import print_outcome
        from harness.gate.pipeline import run_gate
        from harness.gate.prepare import prepare_gate
        from harness.nightly.run import record_nightly
        from harness.paths import PROJECT_ROOT, new_run_dir

        profile_path = profile or PROJECT_ROOT / "reports" / "profiles" / "nightly.yaml"
        gate_spec, stack_spec, experiments = prepare_gate(profile_path, stack, False)
        if gate_spec.load is None:
            raise ConfigError(
                str(profile_path),
                [
                    ConfigProblem(
                        "load", "a nightly profile needs a load: its samples are what is compared"
                    )
                ],
            )
        if gate_spec.rollout is not None:
            raise ConfigError(
                str(profile_path),
                [
                    ConfigProblem(
                        "rollout",
                        "the nightly runs no rollout step (it has no running version to start "
                        "from): `harness gate --baseline` does",
                    )
                ],
            )
        out_dir = out or new_run_dir("nightly")
        command = "harness " + " ".join(sys.argv[1:])
        try:
            run = run_gate(
                gate_spec,
                stack_spec,
                out_dir=out_dir,
                provider=provider,
                command=command,
                progress=typer.echo,
                experiments=experiments,
            )
        except KeyboardInterrupt:
            typer.echo(f"interrupted; partial report in {out_dir}", err=True)
            raise typer.Exit(EXIT_INTERRUPTED) from None
        print_outcome(run, "nightly gate")
        if run.report.outcome not in ("passed", "failed") or run.report.load is None:
            raise typer.Exit(run.exit_code if run.exit_code != EXIT_OK else EXIT_CANNOT_RUN)
        result = record_nightly(history, out_dir, gate_spec.compare)
        title = (
            f"{result.baseline.label.upper()} against the baseline"
            if result.baseline
            else "no baseline to compare with"
        )
        verdict = "FAILED" if result.blocking or run.exit_code else "PASSED"
        text = "\n".join([f"# Nightly {verdict}: {title}", "", *(f"    {x}" for x in result.lines)])
        (out_dir / "nightly.md").write_text(text + "\n")
        for line in result.lines:
            typer.echo(line)
        typer.echo(f"trend page: {history / 'trend.html'} (and {out_dir / 'trend.html'})")
        if result.blocking:
            typer.echo(
                "nightly FAILED: blocking regression of " + ", ".join(result.record.blocking)
            )
        raise typer.Exit(EXIT_FAIL if result.blocking else run.exit_code)
