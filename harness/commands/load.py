"""`harness load` and `harness capacity`: thin commands over `measure_load` and `capacity.search`.

Target, in order: --target URL (any OpenAI-compatible server), --ready-file F (a stack started by
`harness up`), else a stack this command brings up itself (--stack spec, default reference stack;
--provider local|docker) and tears down at the end. The SLOs and the default checks (error rate,
achieved vs sent; --no-default-checks leaves them out) are judged with confidence bounds at alpha
0.05 (`harness/verdict/load_run.py`). Exit codes: 0 passed, 1 a check failed or an SLO ended
inconclusive (too few requests to decide: an inconclusive SLO has not passed; an undecided
default check is reported, not gating), 2 could
not run or the run is invalid (the generator fell behind: the numbers would describe the client,
not the server), 130 interrupted (Ctrl-C or SIGTERM): the report of the part that ran is still
written, with outcome "interrupted", and a stack the command brought up is torn down.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from harness.clients.models import Target, check_url
from harness.errors import ConfigError, ConfigProblem
from harness.exit_codes import EXIT_FAIL, EXIT_INTERRUPTED, exit_code
from harness.load.scenarios import CLI_SOURCE, Overrides, apply_overrides, load_scenario
from harness.spec.load import LoadSpec, OpenLoop
from harness.stack.target import from_ready_file

if TYPE_CHECKING:  # the report module pulls numpy in; `harness --help` should not wait for it
    from harness.load.report import LoadReport

# The stack providers `start_stack` knows (harness.stack.orchestrator.make_launcher).
PROVIDERS = ("local", "docker")

TargetOpt = Annotated[
    str | None,
    typer.Option(
        "--target", help="Base URL of any OpenAI-compatible server (no stack is started)."
    ),
]
ApiKeyOpt = Annotated[
    str | None, typer.Option("--api-key", help="API key for --target.", envvar="HARNESS_API_KEY")
]
ReadyOpt = Annotated[
    Path | None,
    typer.Option("--ready-file", help="Endpoints JSON written by `harness up --ready-file`."),
]
StackOpt = Annotated[
    Path | None, typer.Option("--stack", help="Stack spec to bring up when no target is given.")
]
ProviderOpt = Annotated[
    str | None,
    typer.Option(
        "--provider",
        help="local (processes) or docker (containers), for the stack this command brings up.",
    ),
]
AllowRemoteOpt = Annotated[
    bool,
    typer.Option(
        "--allow-remote",
        help="Let --target (or an external stack spec) be a non-loopback address.",
    ),
]
PromOpt = Annotated[
    str | None,
    typer.Option("--prometheus", help="Prometheus URL for the server-side view (with --target)."),
]
ScenarioOpt = Annotated[
    str | None,
    typer.Option(
        "--scenario",
        help="Scenario: chat, long-prompt, cache-mix, burst, tenants, dataset, multi-turn, "
        "shared-prefix, tokens, trace, or a load spec file.",
    ),
]
RateOpt = Annotated[
    float | None,
    typer.Option(
        "--rate",
        help="Open loop: mean requests per second, Poisson arrivals unless --arrival (or the "
        "scenario) says constant or burst.",
    ),
]
UsersOpt = Annotated[int | None, typer.Option("--users", help="Closed loop: concurrent users.")]
ArrivalOpt = Annotated[
    str | None, typer.Option("--arrival", help="Open loop: constant, poisson or burst.")
]
SendLagOpt = Annotated[
    float | None,
    typer.Option(
        "--max-send-lag-ms",
        help="Open loop: the p99 send lag (ms behind the schedule) above which the run is "
        "invalid (default 50; a busy shared runner may need 250).",
    ),
]
ShapeOpt = Annotated[str | None, typer.Option("--shape", help="steady, ramp, step or spike.")]
DurationOpt = Annotated[str | None, typer.Option("--duration", help="Run length, e.g. 30s, 2m.")]
ProcessesOpt = Annotated[int | None, typer.Option("--processes", help="Locust worker processes.")]
MaxTokensOpt = Annotated[
    int | None, typer.Option("--max-tokens", help="max_tokens of every request.")
]
ModelOpt = Annotated[
    str | None, typer.Option("--model", help="Model name (default: the target's first /v1/models).")
]
SeedOpt = Annotated[
    int | None,
    typer.Option(
        "--seed",
        help="Seed of prompts and Poisson arrivals; default a fresh one per run (printed and in "
        "the report: pass it here to repeat a run exactly).",
    ),
]
EndpointOpt = Annotated[
    str | None,
    typer.Option(
        "--endpoint", help="chat (/v1/chat/completions) or completions (/v1/completions)."
    ),
]
PromptWordsOpt = Annotated[
    int | None, typer.Option("--prompt-words", help="Prompt length in words (+/- the jitter).")
]
IgnoreEosOpt = Annotated[
    bool | None,
    typer.Option(
        "--ignore-eos/--no-ignore-eos",
        help="Ask for exactly --max-tokens tokens (vLLM / llama.cpp ignore_eos): fixed work.",
    ),
]
PrefixShareOpt = Annotated[
    float | None,
    typer.Option(
        "--prefix-share",
        help="Share (0-1) of every prompt that is one prefix common to the run (prefix caching).",
    ),
]
DatasetOpt = Annotated[
    str | None,
    typer.Option(
        "--dataset",
        help="Conversations file whose user turns are the prompts: the ShareGPT JSON array, or "
        "JSONL (ShareGPT `conversations` or `messages`), read as a stream.",
    ),
]
TraceOpt = Annotated[
    str | None,
    typer.Option(
        "--trace",
        help="Replay a trace (Mooncake JSONL or Azure CSV): arrivals at its recorded times, "
        "its input/output lengths (open loop).",
    ),
]
TokenizerUrlOpt = Annotated[
    str | None,
    typer.Option(
        "--tokenizer-url",
        help="Model server whose /tokenize sizes prompts (workload.tokenizer); default: a stack's "
        "primary model server, else --target.",
    ),
]
ExternalWorkersOpt = Annotated[
    int | None,
    typer.Option(
        "--external-workers",
        help="Run only Locust's master here and wait for this many workers started elsewhere "
        "(the command to start them is printed); they send their samples here for one report.",
    ),
]
MasterBindOpt = Annotated[
    str,
    typer.Option(
        "--master-bind",
        help="With --external-workers: HOST:PORT the master listens on (port 0: a free one).",
    ),
]
NoDefaultChecksOpt = Annotated[
    bool,
    typer.Option(
        "--no-default-checks",
        help="Do not judge the run by the default checks (error_rate<=0.01; open loop: "
        "achieved_ratio>=0.9); only the --slo given and the run's validity decide.",
    ),
]
SloOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--slo",
        help="Repeatable. Aggregate 'ttft_p95_ms<=500', or per request 'ttft_ms<=500' (goodput).",
    ),
]
JsonOpt = Annotated[Path | None, typer.Option("--json", help="Write the report (JSON) here too.")]
RunDirOpt = Annotated[
    Path | None, typer.Option("--run-dir", help="Folder for samples, logs and reports.")
]


def _per_request(exprs: list[str]) -> list[str]:
    """The per-request SLOs among these (one that does not parse is the spec check's to name)."""
    from harness.spec.slo import parse_slo

    out = []
    for expr in exprs:
        with contextlib.suppress(ValueError):
            if parse_slo(expr).scope == "request":
                out.append(expr)
    return out


def _echo_err(msg: str) -> None:
    typer.echo(msg, err=True)


def _run_dir(given: Path | None, prefix: str) -> Path:
    """Absolute: Locust and the stack's services run from other folders."""
    if given is not None:
        return given.resolve()
    from harness.paths import new_run_dir

    return new_run_dir(prefix).resolve()


def target_problems(
    target: str | None,
    ready_file: Path | None,
    stack: Path | None,
    provider: str | None,
    allow_remote: bool = False,
) -> list[ConfigProblem]:
    """Everything wrong with the target options together (checked before anything starts)."""
    from harness.stack.external import is_loopback

    problems = []
    if target is not None and not allow_remote and not is_loopback(target):
        problems.append(
            ConfigProblem(
                "--target",
                f"{target} is not a loopback address; pass --allow-remote to send load there",
            )
        )
    if target is not None and ready_file is not None:
        problems.append(ConfigProblem("--target/--ready-file", "give one of them, not both"))
    given = "--target" if target is not None else "--ready-file" if ready_file else None
    for name, value in (("--stack", stack), ("--provider", provider)):
        if value is not None and given is not None:
            problems.append(
                ConfigProblem(
                    name,
                    f"applies only to a stack this command brings up; with {given} the stack "
                    f"is already running: drop {name} or {given}",
                )
            )
    if provider is not None and provider not in PROVIDERS:
        problems.append(
            ConfigProblem(
                "--provider", f"unknown provider {provider!r}; valid: {', '.join(PROVIDERS)}"
            )
        )
    return problems


@contextlib.contextmanager
def resolve_target(
    target: str | None,
    api_key: str | None,
    ready_file: Path | None,
    stack: Path | None,
    prometheus: str | None,
    run_dir: Path,
    progress: Callable[[str], None],
    provider: str | None = None,
    allow_remote: bool = False,
) -> Iterator[Target]:
    """Yield the target; a stack started here is torn down when the block ends (also when an
    interrupt or error propagates through it)."""
    problems = target_problems(target, ready_file, stack, provider, allow_remote)
    if problems:
        raise ConfigError(CLI_SOURCE, problems)
    if target is not None:
        url = check_url(target, "--target")
        prom = check_url(prometheus, "--prometheus") if prometheus else None
        yield Target(url=url, api_key=api_key or "", prometheus=prom, source="--target")
        return
    if ready_file is not None:
        t = from_ready_file(ready_file)
        yield dataclasses.replace(t, api_key=api_key or t.api_key)
        return
    from harness.spec.files import load_stack_spec
    from harness.stack import start_stack
    from harness.stack.target import from_endpoints

    stack_spec = load_stack_spec(stack)
    progress(f"no --target or --ready-file: bringing up the stack ({stack or 'reference stack'})")
    with start_stack(
        stack_spec,
        run_dir=run_dir / "stack",
        provider=provider,
        progress=progress,
        allow_remote=allow_remote,
    ) as running:
        yield from_endpoints(running.endpoints, source="stack started by harness load")


def _build_spec(scenario: str | None, o: Overrides) -> LoadSpec:
    return apply_overrides(load_scenario(scenario), o)


def _check_target(
    target: str | None,
    ready_file: Path | None,
    stack: Path | None,
    provider: str | None,
    allow_remote: bool,
) -> None:
    problems = target_problems(target, ready_file, stack, provider, allow_remote)
    if problems:
        raise ConfigError(CLI_SOURCE, problems)


def _show(report: LoadReport, path: Path, json_path: Path | None) -> Path:
    """Print the summary, write --json; return where the report is."""
    from harness.load.report import render

    typer.echo(render(report))
    if json_path is not None:
        report.write(json_path)
    return json_path or path


def _master_bind(value: str) -> str:
    """HOST:PORT for the master; port 0 becomes a free one."""
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ConfigError(
            CLI_SOURCE, [ConfigProblem("--master-bind", f"expected HOST:PORT, got {value!r}")]
        )
    if int(port) == 0:
        from harness.stack.ports import free_ports

        port = str(free_ports(1)[0])
    return f"{host}:{port}"


def register(app: typer.Typer) -> None:
    # `harness load [OPTIONS]` runs a load test (the group's own callback); `harness load merge
    # DIR...` is its one subcommand.
    load_app = typer.Typer(add_completion=False)
    load_app.callback(invoke_without_command=True)(load_command)
    load_app.command("merge")(merge_command)
    app.add_typer(load_app, name="load")
    app.command("capacity")(capacity_command)


def merge_command(
    folders: Annotated[
        list[Path], typer.Argument(help="Run folders (or sample folders) written separately.")
    ],
    out: Annotated[
        Path | None, typer.Option("--out", help="Folder for the merged report.json.")
    ] = None,
    json_path: JsonOpt = None,
    no_default_checks: NoDefaultChecksOpt = False,
) -> None:
    """Merge load runs written separately into one report: exact percentiles over the union."""
    from harness.load.merge import merge_runs
    from harness.verdict.load_run import run_verdict

    rd = _run_dir(out, "load-merged")
    report = merge_runs(folders, rd, judge=run_verdict, default_checks=not no_default_checks)
    typer.echo(f"report: {_show(report, rd / 'report.json', json_path)}")
    code = exit_code(report.outcome)
    if code:
        raise typer.Exit(code)


def load_command(
    ctx: typer.Context,
    target: TargetOpt = None,
    api_key: ApiKeyOpt = None,
    ready_file: ReadyOpt = None,
    stack: StackOpt = None,
    provider: ProviderOpt = None,
    allow_remote: AllowRemoteOpt = False,
    prometheus: PromOpt = None,
    scenario: ScenarioOpt = None,
    rate: RateOpt = None,
    users: UsersOpt = None,
    arrival: ArrivalOpt = None,
    max_send_lag_ms: SendLagOpt = None,
    shape: ShapeOpt = None,
    duration: DurationOpt = None,
    processes: ProcessesOpt = None,
    max_tokens: MaxTokensOpt = None,
    model: ModelOpt = None,
    seed: SeedOpt = None,
    slo: SloOpt = None,
    json_path: JsonOpt = None,
    run_dir: RunDirOpt = None,
    endpoint: EndpointOpt = None,
    prompt_words: PromptWordsOpt = None,
    ignore_eos: IgnoreEosOpt = None,
    prefix_share: PrefixShareOpt = None,
    dataset: DatasetOpt = None,
    trace: TraceOpt = None,
    tokenizer_url: TokenizerUrlOpt = None,
    external_workers: ExternalWorkersOpt = None,
    master_bind: MasterBindOpt = "127.0.0.1:0",
    no_default_checks: NoDefaultChecksOpt = False,
) -> None:
    """Drive load at a stack or endpoint; print exact percentiles, goodput and the server's view.

    `harness load merge DIR...` merges run folders written separately into one report."""
    if ctx.invoked_subcommand is not None:
        return  # `harness load merge ...`
    from harness.load.execute import LoadInterrupted, measure_load
    from harness.verdict.breakdown import judge_agreement
    from harness.verdict.load_run import run_verdict

    _check_target(target, ready_file, stack, provider, allow_remote)
    bind = _master_bind(master_bind) if external_workers is not None else None
    if external_workers is not None:
        if processes is not None:
            raise ConfigError(
                CLI_SOURCE,
                [ConfigProblem("--processes", "give --external-workers or --processes, not both")],
            )
        processes = external_workers
    spec = _build_spec(
        scenario,
        Overrides(
            rate_rps=rate,
            users=users,
            arrival=arrival,
            max_send_lag_ms=max_send_lag_ms,
            shape=shape,
            duration=duration,
            processes=processes,
            max_tokens=max_tokens,
            model=model,
            seed=seed,
            slos=list(slo or []),
            endpoint=endpoint,
            prompt_words=prompt_words,
            ignore_eos=ignore_eos,
            prefix_share=prefix_share,
            dataset=dataset,
            trace=trace,
        ),
    )
    rd = _run_dir(run_dir, "load")
    try:
        with resolve_target(
            target, api_key, ready_file, stack, prometheus, rd, _echo_err, provider, allow_remote
        ) as tgt:
            if tokenizer_url is not None:
                tgt = dataclasses.replace(
                    tgt, tokenizer_url=check_url(tokenizer_url, "--tokenizer-url")
                )
            report = measure_load(
                spec,
                tgt,
                rd,
                progress=_echo_err,
                default_checks=not no_default_checks,
                master_bind=bind,
                judge=run_verdict,
                judge_breakdown=judge_agreement,
            )
    except LoadInterrupted as stopped:
        # Here the stack (if this command started one) is already down: the interrupt went
        # through start_stack's teardown on its way out.
        where = _show(stopped.report, stopped.path, json_path)
        typer.echo(f"report: {where} (partial: interrupted)")
        _echo_err(f"interrupted; partial report in {where}")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    typer.echo(f"report: {_show(report, rd / 'report.json', json_path)}")
    code = exit_code(report.outcome)
    if code:
        raise typer.Exit(code)


def capacity_command(
    slo: SloOpt = None,
    target: TargetOpt = None,
    api_key: ApiKeyOpt = None,
    ready_file: ReadyOpt = None,
    stack: StackOpt = None,
    provider: ProviderOpt = None,
    allow_remote: AllowRemoteOpt = False,
    prometheus: PromOpt = None,
    scenario: ScenarioOpt = None,
    arrival: ArrivalOpt = None,
    max_send_lag_ms: SendLagOpt = None,
    start_rate: Annotated[
        float, typer.Option("--start-rate", help="First rate tried (req/s).")
    ] = 1.0,
    max_rate: Annotated[
        float, typer.Option("--max-rate", help="Never try above this (req/s).")
    ] = 1000.0,
    max_steps: Annotated[int, typer.Option("--max-steps", help="Load runs at most.")] = 8,
    precision: Annotated[
        float, typer.Option("--precision", help="Stop when fail/pass rates are this close.")
    ] = 0.1,
    step_duration: Annotated[
        str, typer.Option("--step-duration", help="Length of each run.")
    ] = "30s",
    processes: ProcessesOpt = None,
    max_tokens: MaxTokensOpt = None,
    model: ModelOpt = None,
    seed: SeedOpt = None,
    json_path: JsonOpt = None,
    run_dir: RunDirOpt = None,
    endpoint: EndpointOpt = None,
    prompt_words: PromptWordsOpt = None,
    ignore_eos: IgnoreEosOpt = None,
    prefix_share: PrefixShareOpt = None,
    goodput_target: Annotated[
        float | None,
        typer.Option(
            "--goodput-target",
            help="Search for the highest rate at which at least this share (0-1) of requests "
            "meets every per-request --slo (e.g. 'ttft_ms<=500' and 'itl_ms<=50'), shown with "
            "95% confidence at each step.",
        ),
    ] = None,
) -> None:
    """Find the highest open-loop rate meeting every --slo, or keeping goodput above
    --goodput-target (doubling, then bisection); the answer is an interval of rates."""
    from harness.load.capacity import CapacityStep, SearchPlan, search, step_from_report
    from harness.load.execute import LoadInterrupted, measure_load
    from harness.verdict.goodput import min_requests_to_pass
    from harness.verdict.load_run import RUN_ALPHA, run_verdict, step_verdict

    slos = list(slo or [])
    problems = target_problems(target, ready_file, stack, provider, allow_remote)
    given = [*load_scenario(scenario).slos, *slos]
    per_request = _per_request(given)
    if goodput_target is not None and not 0 < goodput_target < 1:
        problems.append(
            ConfigProblem("--goodput-target", f"a share between 0 and 1, got {goodput_target:g}")
        )
    elif goodput_target is not None and not per_request:
        problems.append(
            ConfigProblem(
                "--slo",
                "--goodput-target needs the per-request SLOs a request must meet, e.g. "
                "--slo 'ttft_ms<=500' --slo 'itl_ms<=50'",
            )
        )
    elif goodput_target is None and per_request:
        problems.append(
            ConfigProblem(
                "--goodput-target",
                f"per-request SLOs ({', '.join(per_request)}) define goodput: say the share of "
                "requests that must meet them, e.g. --goodput-target 0.9",
            )
        )
    elif goodput_target is None and not [s for s in slos if not s.startswith("error_rate")]:
        problems.append(
            ConfigProblem(
                "--slo",
                "capacity needs at least one latency or throughput SLO, e.g. 'ttft_p95_ms<=500', "
                "or per-request SLOs with --goodput-target",
            )
        )
    if not 0 < start_rate <= max_rate:
        problems.append(
            ConfigProblem("--start-rate", f"must be > 0 and <= --max-rate, got {start_rate:g}")
        )
    if max_steps < 1:
        problems.append(ConfigProblem("--max-steps", "must be at least 1"))
    if precision <= 0:
        problems.append(ConfigProblem("--precision", "must be > 0"))
    if problems:
        raise ConfigError(CLI_SOURCE, problems)
    if goodput_target is not None:
        slos.append(f"goodput>={goodput_target:g}")  # a failed request meets no SLO
    elif not any(s.startswith("error_rate") for s in slos):
        slos.append("error_rate<=0.01")  # a server that errors fast is not "fast"
    base = _build_spec(
        scenario,
        Overrides(
            rate_rps=start_rate,
            arrival=arrival,
            max_send_lag_ms=max_send_lag_ms,
            duration=step_duration,
            processes=processes,
            max_tokens=max_tokens,
            model=model,
            seed=seed,
            slos=slos,
            endpoint=endpoint,
            prompt_words=prompt_words,
            ignore_eos=ignore_eos,
            prefix_share=prefix_share,
        ),
    )
    if isinstance(base.load, OpenLoop) and base.load.trace is not None:
        raise ConfigError(
            CLI_SOURCE,
            [
                ConfigProblem(
                    "--scenario (load.arrival)",
                    "a trace sets its own arrival times; capacity varies the rate: use a "
                    "constant or poisson scenario",
                )
            ],
        )
    rd = _run_dir(run_dir, "capacity")
    with resolve_target(
        target, api_key, ready_file, stack, prometheus, rd, _echo_err, provider, allow_remote
    ) as tgt:

        def run_at(rate: float) -> CapacityStep:
            spec = apply_overrides(base, Overrides(rate_rps=rate))
            if goodput_target is not None:
                # Enough requests that a step where every one met the SLOs can show the target.
                least = min_requests_to_pass(goodput_target, RUN_ALPHA) / rate
                if least > spec.duration_s:
                    spec = spec.model_copy(update={"duration_s": math.ceil(least * 10) / 10})
            step_dir = rd / f"step-{len(list(rd.glob('step-*'))) + 1:02d}-{rate:.4g}rps"
            try:
                report = measure_load(
                    spec,
                    tgt,
                    step_dir,
                    _echo_err,
                    server_view=False,
                    # A goodput step is judged on its share's bounds alone; an SLO step on the
                    # estimates, with the default checks.
                    default_checks=goodput_target is None,
                    judge=step_verdict if goodput_target is None else run_verdict,
                )
            except LoadInterrupted as stopped:
                report = stopped.report  # the search ends on it, keeping the steps so far
            step = step_from_report(rate, report, str(step_dir / "report.json"))
            _echo_err(
                f"capacity: {rate:.4g} req/s -> {step.outcome}"
                + (f" ({step.reasons[0]})" if step.reasons else "")
            )
            return step

        result = search(
            run_at,
            SearchPlan(start_rate, max_rate, max_steps=max_steps, precision=precision),
            slos,
            goodput_target,
        )
    result.config = base.model_dump(mode="json")
    rd.mkdir(parents=True, exist_ok=True)
    out = result.model_dump_json(indent=2) + "\n"
    (rd / "capacity.json").write_text(out)
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(out)
    typer.echo(result.explanation)
    for s in result.steps:
        goodput = (
            f"  goodput {s.goodput_share:.1%} of {s.goodput_n} "
            f"[{s.goodput_lower:.1%}, {s.goodput_upper:.1%}]"
            if goodput_target is not None
            and s.goodput_share is not None
            and s.goodput_lower is not None
            and s.goodput_upper is not None
            else ""
        )
        typer.echo(
            f"  {s.rate_rps:>9.4g} req/s  {s.outcome:<12}  ttft p95 {s.ttft_p95_ms or 0:.0f} ms  "
            f"achieved {s.achieved_rate_rps or 0:.3g} req/s{goodput}"
        )
    where = json_path or rd / "capacity.json"
    if result.outcome == "interrupted":
        typer.echo(f"report: {where} (partial: interrupted)")
        _echo_err(f"interrupted; partial capacity report in {where}")
        raise typer.Exit(EXIT_INTERRUPTED)
    typer.echo(f"report: {where}")
    if result.capacity_rps is None:
        raise typer.Exit(EXIT_FAIL)
