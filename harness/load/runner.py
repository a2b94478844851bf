"""Run Locust as a subprocess (one process, or a master plus N workers) and collect the samples.

The harness never imports Locust (it monkey-patches the interpreter). It writes the worker config,
starts `python -m locust` in its own session, prints progress from the sample files as they grow,
and ends the run when every worker has written its done file (or a hard deadline passes), by
signalling the process group it created. Nothing else is ever signalled.

A spec without a seed gets a fresh one here (the spec the run returns carries it), and a run
that repeats an earlier run's prompts against the same target is warned about (repeats.py).

Ctrl-C or SIGTERM (a KeyboardInterrupt in the main thread) ends the run early: Locust's group is
stopped as always, and the samples written so far come back as a run marked interrupted
(`LoadRun.interrupted`), for the caller to summarize and report as partial.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from harness import wire
from harness.clients.models import Target, discover_context, discover_model
from harness.clients.poll import poll_until
from harness.data.progress import Progress
from harness.data.samples import DONE_GLOB, START_GLOB, Sample, SampleTail, read_samples
from harness.errors import ConfigError, ConfigProblem, HarnessError
from harness.load import clock
from harness.load.config import CONFIG_ENV, WorkerConfig
from harness.load.dataset import Conversation, read_conversations, select
from harness.load.limits import (
    TRACE_COUNTED,
    ContextCheck,
    Fitted,
    counted_how,
    fit_conversations,
    fit_trace,
)
from harness.load.profile import build_profile
from harness.load.repeats import RECORD_NAME, check_and_record, fingerprint
from harness.load.tokens import TokenSizing, sizing_for_run
from harness.load.trace import TraceEntry, read_trace
from harness.measure.stats import percentile
from harness.measure.summary import RunContext, WorkerAccount
from harness.niceness import keep_niceness
from harness.paths import PROJECT_ROOT, runs_dir
from harness.provenance import now_iso
from harness.spec.load import LoadSpec, OpenLoop
from harness.stack import ownership
from harness.stack.ports import free_ports
from harness.stack.process import descendants, pid_alive, tail_file

LOCUSTFILE = PROJECT_ROOT / "scenarios" / "locustfile.py"
# Locust's import, fork and worker handshake; generous for a loaded 2-core machine.
STARTUP_ALLOWANCE_S = 30.0
# Workers on other machines are started by hand once the master is up.
EXTERNAL_WORKERS_WAIT_S = 300.0
PROGRESS_EVERY_S = 2.0


class LoadRunError(HarnessError):
    """Locust could not run the load (it exited early); carries the tail of its log."""


@dataclass
class LoadRun:
    spec: LoadSpec
    target: Target
    model: str
    run_dir: Path
    samples: list[Sample]
    context: RunContext
    locust_exit: int | None
    locust_log: Path
    wall_s: float
    started_at: float = field(default_factory=time.time)
    # Dataset and trace runs: the requests over the model's context, counted before the run.
    limits: ContextCheck | None = None

    @property
    def interrupted(self) -> bool:
        """Stopped early by Ctrl-C or SIGTERM: the samples cover only the part that ran."""
        return self.context.interrupted_after_s is not None


def locust_command(cfg: WorkerConfig, stop_timeout_s: float) -> list[str]:
    cmd = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "--only-summary",
        "--exit-code-on-error",
        "0",
        "--stop-timeout",
        f"{stop_timeout_s:g}",
        "--loglevel",
        "INFO",
    ]
    if cfg.master_bind is not None:
        host, _, port_s = cfg.master_bind.rpartition(":")
        cmd += [
            "--master",
            "--expect-workers",
            str(cfg.spec.processes),
            "--master-bind-host",
            host,
            "--master-bind-port",
            port_s,
        ]
    elif cfg.spec.processes > 1:
        port = free_ports(1)[0]
        cmd += [
            "--processes",
            str(cfg.spec.processes),
            "--master-bind-host",
            "127.0.0.1",
            "--master-bind-port",
            str(port),
            "--master-host",
            "127.0.0.1",
            "--master-port",
            str(port),
        ]
    cmd.append(cfg.user_class)
    return cmd


_PR_SET_PDEATHSIG = 1


def _term_with_parent() -> None:
    """Runs in Locust's process before exec: should the harness die (even by SIGKILL), the kernel
    sends Locust SIGTERM, and Locust stops its workers. Only set from the main thread: the
    signal follows the thread that started the child."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


@contextlib.contextmanager
def _signals_held() -> Iterator[list[int]]:
    """Hold SIGINT and SIGTERM while Locust's group is being stopped (a second Ctrl-C must not
    leave it running); the signals that arrived meanwhile are listed for the caller, not lost."""
    held: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield held  # only the main thread receives signals (and may set handlers)
        return

    def hold(signum: int, frame: FrameType | None) -> None:
        held.append(signum)

    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    for s in previous:
        signal.signal(s, hold)
    try:
        yield held
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler if handler is not None else signal.SIG_DFL)


def _group_gone(proc: subprocess.Popen[bytes], family: set[int]) -> bool:
    return proc.poll() is not None and not any(pid_alive(p) for p in family)


def _stop_group(proc: subprocess.Popen[bytes], grace_s: float = 10.0) -> int | None:
    """SIGTERM the session we started (Locust quits cleanly on it) and wait for all of it: the
    master and the workers it forked, which outlive it by a moment. SIGKILL what is left after
    the grace. Only this session's processes are ever signalled."""
    family = descendants(proc.pid)  # Locust's forked workers, known while the master lives
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        if _group_gone(proc, family):
            break
        with contextlib.suppress(ProcessLookupError):
            # The group outlives its leader while a worker is in it (its id is not reused then).
            os.killpg(proc.pid, sig)
        poll_until(lambda: _group_gone(proc, family), wait_s, 0.05)
    return proc.poll()


def read_accounts(sample_dir: Path) -> list[WorkerAccount]:
    out = []
    for p in sorted(sample_dir.glob(DONE_GLOB)):
        d = json.loads(p.read_text())
        out.append(
            WorkerAccount(
                worker=int(d["worker"]),
                t0_s=float(d["t0_s"]),
                deadline_s=float(d["deadline_s"]),
                scheduled=int(d.get("scheduled", 0)),
                not_sent=int(d.get("not_sent", 0)),
                cap_waits=int(d.get("cap_waits", 0)),
                unfinished=int(d.get("unfinished", 0)),
                cpu_s=float(d.get("cpu_s", 0.0)),
                wall_s=float(d.get("wall_s", 0.0)),
            )
        )
    return out


def _t0_of(path: Path) -> float | None:
    try:
        return float(json.loads(path.read_text())["t0_s"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def fresh_seed() -> int:
    return random.SystemRandom().randrange(1, 2**31)


class _ProgressPrinter:
    def __init__(self, sample_dir: Path, duration_s: float, emit: Progress) -> None:
        self.tail = SampleTail(sample_dir)
        self.sample_dir = sample_dir
        self.t0_s: float | None = None  # when the schedule began, from the workers' start files
        self.duration_s = duration_s
        self.emit = emit
        self.first_s: float | None = None
        self.total = self.errors = 0
        self.last = time.monotonic()

    def tick(self) -> None:
        new = self.tail.new_samples()
        if self.t0_s is None:
            starts = [_t0_of(p) for p in self.sample_dir.glob(START_GLOB)]
            self.t0_s = min((t for t in starts if t is not None), default=None)
        now = time.monotonic()
        interval, self.last = now - self.last, now
        if not new and self.first_s is None:
            return
        if self.first_s is None:
            self.first_s = self.t0_s or min(s.sent_s for s in new)
        self.total += len(new)
        self.errors += sum(1 for s in new if not s.ok)
        ttft = [s.ttft_ms for s in new if s.ok and s.ttft_ms is not None]
        p50, p95 = percentile(ttft, 50), percentile(ttft, 95)
        elapsed = time.time() - self.first_s
        lat = (
            f"ttft p50 {p50:.0f} ms p95 {p95:.0f} ms"
            if p50 is not None and p95 is not None
            else "ttft -"
        )
        # Past the schedule nothing new is sent: say so, or "20s/20s done 4 (0.0/s)" reads odd.
        where = (
            f"{elapsed:5.0f}s/{self.duration_s:.0f}s"
            if elapsed <= self.duration_s
            else f"draining {elapsed - self.duration_s:.0f}s after the {self.duration_s:.0f}s "
            "schedule"
        )
        self.emit(
            f"load {where}  done {self.total} ({len(new) / max(interval, 1e-6):.1f}/s)  "
            f"errors {self.errors}  {lat}"
        )


def run_load(
    spec: LoadSpec,
    target: Target,
    run_dir: Path,
    progress: Progress | None = None,
    stop: threading.Event | None = None,
    default_checks: bool = True,
    master_bind: str | None = None,
) -> LoadRun:
    """Run one load test to the end and return its samples; never leaves a process behind.

    `stop` (set from another thread, e.g. when the run is driven from a background thread that
    signals cannot reach) ends the run early exactly as an interruption does.

    `master_bind` ("127.0.0.1:PORT"): Locust runs here as master only and waits for
    `spec.processes` workers started elsewhere with this run's `load-config.json`; they send
    their samples here (forward.py), so the report is the same as a local run's.

    A KeyboardInterrupt (Ctrl-C, or SIGTERM turned into one) during the run stops Locust and
    returns what was recorded, with `interrupted` set; the caller decides what to do next.
    """
    # Locust runs from the project root: a relative folder would point elsewhere there.
    run_dir = run_dir.resolve()
    if spec.seed is None:
        spec = spec.model_copy(update={"seed": fresh_seed()})
    seed = spec.seed
    assert seed is not None
    run_dir.mkdir(parents=True, exist_ok=True)
    sample_dir = run_dir / "samples"
    sample_dir.mkdir(exist_ok=True)
    for old in [*sample_dir.glob("*.jsonl"), *sample_dir.glob("*.json")]:
        old.unlink()
    model = spec.model or _model_for(target)
    emit = progress or (lambda _m: None)
    repeat = check_and_record(
        runs_dir() / RECORD_NAME,
        target.url,
        fingerprint(spec.workload, seed),
        seed,
        run_dir,
        now_iso(),
    )
    if repeat:
        emit(f"warning: {repeat}")
    hard_stop = spec.duration_s + spec.drain_timeout_s + 10.0
    sizing = _token_sizing(spec, target, model, run_dir, seed, emit)
    limits, notes = _inputs_and_limits(spec, target, model, seed, sizing, emit)
    cfg = WorkerConfig(
        spec=spec,
        target_url=target.url,
        api_key=target.api_key,
        model=model,
        wire=wire.current(),
        sample_dir=str(sample_dir),
        run_tag=run_dir.name[:24] or "run",
        seed=seed,
        hard_stop_s=hard_stop,
        one_token_words=sizing.one_token_words if sizing else None,
        instruction_tokens=sizing.instruction_tokens if sizing else None,
        token_lengths=sizing.token_lengths if sizing and spec.workload.dataset else None,
        template_tokens=_template_tokens(sizing),
        context_tokens=limits.context_tokens if limits else None,
        forward_to_master=master_bind is not None,
        master_bind=master_bind,
    )
    cfg_path = run_dir / "load-config.json"
    cfg.write(cfg_path)
    log_path = run_dir / "locust.log"
    cmd = locust_command(cfg, stop_timeout_s=1.0)
    env = {**os.environ, CONFIG_ENV: str(cfg_path), "PYTHONUNBUFFERED": "1", **clock.anchor_env()}
    emit(
        f"load: {spec.name} -> {target.url} model {model}, {_describe(spec)} "
        f"for {spec.duration_s:g}s, "
        f"{spec.processes} process(es), seed {seed}"
    )
    startup_s = STARTUP_ALLOWANCE_S
    if master_bind is not None:
        startup_s = EXTERNAL_WORKERS_WAIT_S
        host, _, port = master_bind.rpartition(":")
        emit(
            f"waiting up to {startup_s:g}s for {spec.processes} worker(s); start each with:\n"
            f"  HARNESS_LOAD_CONFIG={cfg_path} locust -f {LOCUSTFILE} --worker "
            f"--master-host {host} --master-port {port} {cfg.user_class}"
        )
    printer = _ProgressPrinter(sample_dir, spec.duration_s, emit)
    t_start = time.monotonic()
    hard_deadline = t_start + startup_s + hard_stop
    problems: list[str] = []
    launched_s = clock.now()
    interrupted_s: float | None = None
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            cmd,
            cwd=PROJECT_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_term_with_parent
            if threading.current_thread() is threading.main_thread()
            else None,
        )
        keep_niceness(proc.pid)
        # Recorded: a harness killed meanwhile leaves no Locust behind (the next command reaps it).
        ownership.current().add_session("locust", proc.pid)
        try:
            next_progress = t_start + PROGRESS_EVERY_S
            while True:
                done = len(list(sample_dir.glob(DONE_GLOB)))
                if done >= spec.processes:
                    break
                if proc.poll() is not None:
                    if done == 0 and not any(sample_dir.glob("*.jsonl")):
                        raise LoadRunError(
                            f"locust exited with code {proc.returncode} before sending load\n"
                            f"--- last lines of {log_path} ---\n{tail_file(log_path, 25)}"
                        )
                    problems.append(f"locust exited early with code {proc.returncode}")
                    break
                if time.monotonic() > hard_deadline:
                    problems.append("the run passed its hard deadline and was stopped")
                    break
                if time.monotonic() > t_start + startup_s and not any(sample_dir.glob("*.jsonl")):
                    raise LoadRunError(
                        f"no load worker started within {startup_s:g}s\n"
                        f"--- last lines of {log_path} ---\n{tail_file(log_path, 25)}"
                    )
                if stop is not None and stop.is_set():
                    interrupted_s = clock.now()
                    emit("stop requested: stopping the load")
                    break
                if time.monotonic() >= next_progress:
                    printer.tick()
                    next_progress += PROGRESS_EVERY_S
                time.sleep(0.2)
        except KeyboardInterrupt:
            interrupted_s = clock.now()
            emit("interrupted: stopping the load; the report will cover the part that ran")
        finally:
            with _signals_held() as held:
                exit_code = _stop_group(proc)
            ownership.current().remove_session(proc.pid)
    if held and interrupted_s is None:
        interrupted_s = clock.now()  # the signal came while Locust was being stopped
    printer.tick()
    samples = read_samples(sample_dir)
    accounts = read_accounts(sample_dir)
    ctx = run_context(
        spec, samples, accounts, problems, launched_s, interrupted_s, cfg.context_tokens
    )
    ctx.default_checks = default_checks
    ctx.warnings = ([repeat] if repeat else []) + notes
    return LoadRun(
        spec=spec,
        target=target,
        model=model,
        run_dir=run_dir,
        samples=samples,
        context=ctx,
        locust_exit=exit_code,
        locust_log=log_path,
        wall_s=time.monotonic() - t_start,
        limits=limits,
    )


def _token_sizing(
    spec: LoadSpec, target: Target, model: str, run_dir: Path, seed: int, emit: Progress
) -> TokenSizing | None:
    """workload.tokenizer: the run's sizing in the model's tokens (tokens.py), the dataset's
    conversations chosen by their tokens."""
    w = spec.workload
    if not w.tokenizer:
        return None
    url = target.tokenizer_url or target.url
    sizing = sizing_for_run(run_dir, url, model, target.api_key, w.dataset, seed)
    emit(
        f"tokenizer {url}/tokenize: {len(sizing.one_token_words)} one-token words, instruction "
        f"{sizing.instruction_tokens} tokens; check prompt {sizing.check_tokens} tokens for "
        f"{sizing.instruction_tokens} + {sizing.check_words} "
        + ("(exact)" if sizing.exact else "(NOT exact: sizes are approximate)")
        + (
            f"; chat template {sizing.template_user} tokens around a user message"
            if sizing.template_user is not None
            else "; chat template tokens unknown (sizes count the messages only)"
        )
    )
    return sizing


def _inputs_and_limits(
    spec: LoadSpec,
    target: Target,
    model: str,
    seed: int,
    sizing: TokenSizing | None,
    emit: Progress,
) -> tuple[ContextCheck | None, list[str]]:
    """A dataset: which conversations the run draws from (one line, with the entries skipped,
    which also goes to the run's warnings). A dataset or trace run: its requests over the model's
    context counted (limits.py); ConfigError when workload.context_overflow leaves none to send."""
    w, load = spec.workload, spec.load
    trace = load.trace if isinstance(load, OpenLoop) else None
    notes: list[str] = []
    convs = None
    lengths = sizing.token_lengths if sizing is not None and w.dataset is not None else None
    if w.dataset is not None:
        path = Path(w.dataset.path)
        reader = read_conversations(path)
        chosen = select(reader, w.dataset, lengths, seed=seed)
        convs = chosen.conversations
        emit(f"dataset {path.name}: the run draws from {chosen.how}, of {chosen.read} read")
        if (skipped := reader.skipped_line()) is not None:
            notes.append(f"dataset {path.name}: {skipped}")
            emit(notes[-1])
    if trace is None and convs is None:
        return None, notes
    context, where = discover_context(target, model)
    if trace is not None:
        entries = [e for e in read_trace(Path(trace.path), trace) if e.offset_s < spec.duration_s]
        fit: Fitted[TraceEntry] | Fitted[Conversation] = fit_trace(
            entries, context, w.context_overflow
        )
        unit, counted = "requests", TRACE_COUNTED
    else:
        assert convs is not None
        template = _template_tokens(sizing)
        fit = fit_conversations(convs, w, context, lengths, template)
        unit, counted = "conversations", counted_how(sizing is not None, template is not None)
    check = ContextCheck(
        context_tokens=context,
        source=where,
        policy=w.context_overflow,
        unit=unit,
        total=len(fit.items) + fit.skipped,
        over=fit.over,
        clipped=fit.clipped,
        skipped=fit.skipped,
        counted=counted,
    )
    emit(check.line())
    if not fit.items:
        source = trace.path if trace is not None else w.dataset.path if w.dataset else ""
        problem = ConfigProblem(
            "workload.context_overflow", f"nothing left to send: {check.line()}"
        )
        raise ConfigError(source, [problem])
    return check, notes


def _template_tokens(sizing: TokenSizing | None) -> tuple[int, int] | None:
    if sizing is None or sizing.template_user is None or sizing.template_system_user is None:
        return None
    return sizing.template_user, sizing.template_system_user


def _model_for(target: Target) -> str:
    try:
        return discover_model(target)
    except HarnessError:
        if target.model:
            return target.model
        raise


def _describe(spec: LoadSpec) -> str:
    load = spec.load
    shape = "" if spec.shape.kind == "steady" else f" ({spec.shape.kind})"
    if isinstance(load, OpenLoop) and load.trace is not None:
        return f"trace replay {Path(load.trace.path).name} x{load.trace.speedup:g}"
    if isinstance(load, OpenLoop):
        return f"open loop {load.arrival} {load.rate_rps:g} req/s{shape}"
    return f"closed loop {load.users} users{shape}"


def run_context(
    spec: LoadSpec,
    samples: list[Sample],
    accounts: list[WorkerAccount],
    problems: list[str],
    launched_s: float | None = None,
    interrupted_s: float | None = None,
    context_tokens: int | None = None,
) -> RunContext:
    """How the samples came about. An interrupted run is summarized as a run of the length that
    actually ran (its rates and expected arrivals over that span), never of the planned length.
    A trace's requests over `context_tokens` that workload.context_overflow skips are not
    expected."""
    load = spec.load
    open_loop = isinstance(load, OpenLoop)
    if accounts:
        start = min(a.t0_s for a in accounts)
    elif samples:
        start = min(s.meant_s for s in samples)
    elif interrupted_s is not None and launched_s is not None:
        start = launched_s
    else:
        start = time.time()
    duration = spec.duration_s
    ran: float | None = None
    if interrupted_s is not None:
        # 1 ms at least: the rates divide by it.
        ran = duration = min(max(interrupted_s - start, 1e-3), spec.duration_s)
    expected = None
    if isinstance(load, OpenLoop) and load.trace is not None:
        policy = spec.workload.context_overflow
        trace = fit_trace(read_trace(Path(load.trace.path), load.trace), context_tokens, policy)
        expected = float(sum(1 for e in trace.items if e.offset_s < duration))
    elif isinstance(load, OpenLoop):
        expected = build_profile(spec.shape, load.rate_rps, spec.duration_s).cumulative(duration)
    return RunContext(
        start_s=start,
        duration_s=duration,
        open_loop=open_loop,
        arrival=load.arrival if isinstance(load, OpenLoop) else None,
        expected_requests=expected,
        max_send_lag_ms=load.max_send_lag_ms if isinstance(load, OpenLoop) else 50.0,
        slos=spec.slos,
        workers_expected=spec.processes,
        workers=accounts,
        problems=problems,
        interrupted_after_s=ran,
        cache_repeats=spec.workload.repeated_share > 0 and spec.workload.temperature == 0,
    )
