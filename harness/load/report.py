"""The JSON a load run leaves behind, and its console summary.

The report describes itself well enough to rerun it: schema and harness version, git commit,
host, the full load spec, the (redacted) target. Reading is lenient (extra fields ignored) so older
reports still load; the outcome has fixed names: passed, failed (an SLO or a default check),
inconclusive (none failed, but an SLO the user gave could not be decided on this many requests:
not passed; a default check left undecided is shown so and does not decide it),
invalid (the run itself), interrupted (stopped by Ctrl-C or SIGTERM: a partial report of the part
that ran).

The checks are judged in `harness/verdict/load_run.py` (the caller hands `measure_load` the judge);
reports written before they moved kept them in the summary (`summary.slo_checks`,
`summary.default_checks`, each with `passed` and `observed`): reading lifts those into `checks`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, model_validator

from harness import __version__
from harness.data.samples import Sample
from harness.load.limits import ContextCheck
from harness.load.workload_view import WorkloadView, render_view
from harness.measure.breakdown import TtftBreakdown, breakdown_rows, decode_line
from harness.measure.server import ServerView
from harness.measure.stats import Distribution
from harness.measure.summary import LoadSummary, RunContext
from harness.provenance import HostInfo

SCHEMA_VERSION = 1
Outcome = Literal["passed", "failed", "inconclusive", "invalid", "interrupted"]
Decision = Literal["pass", "fail", "inconclusive"]


class LoadCheck(BaseModel):
    """One SLO or default check of the run as the verdict judged it: the decision, the sample
    size, the estimate and its confidence bounds (None where the figure has none)."""

    model_config = ConfigDict(extra="ignore")
    expr: str
    decision: Decision
    # Set by the verdict: an inconclusive check has not passed.
    passed: bool
    reason: str
    n: int | None = None
    estimate: float | None = None
    lower: float | None = None
    upper: float | None = None
    # One-sided error rate of each bound; None: judged on the estimate alone.
    alpha: float | None = None
    samples_needed: int | None = None  # inconclusive: about how many requests would decide
    default: bool = False  # a default check of every run, not an SLO the user gave

    @model_validator(mode="before")
    @classmethod
    def _old_entry(cls, data: Any) -> Any:
        """An entry of an older report: `passed` and `observed`, no decision."""
        if isinstance(data, dict) and "decision" not in data and "passed" in data:
            data = {**data, "decision": "pass" if data["passed"] else "fail"}
            data.setdefault("estimate", data.get("observed"))
        return data


# Judges a run's SLOs and default checks and gives its outcome (harness/verdict/load_run.py);
# the command passes it in.
RunJudge = Callable[[Sequence[Sample], LoadSummary, RunContext], tuple[list[LoadCheck], Outcome]]


class LoadReport(BaseModel):
    model_config = ConfigDict(extra="ignore")

    schema_version: int = SCHEMA_VERSION
    kind: Literal["load"] = "load"
    # The spec's name; reports written before it was kept read as "load".
    name: str = "load"
    harness_version: str = __version__
    git_sha: str | None = None
    # Named as in the gate's report; reports written before read theirs from `created_at`.
    started_at: str = Field(validation_alias=AliasChoices("started_at", "created_at"))
    host: HostInfo
    config: dict[str, Any]  # the LoadSpec that produced this run
    target: dict[str, Any]
    model: str
    outcome: Outcome
    summary: LoadSummary
    # The user's SLOs, then the default checks; empty when the run was not judged.
    checks: list[LoadCheck] = []
    server: ServerView | None = None
    # Where the time to first token went, per request (None: no answer carried the gateway's
    # Server-Timing).
    ttft_breakdown: TtftBreakdown | None = None
    # The opt-in workloads' own figures (tokens sent and served, per turn, prefix cache).
    workload: WorkloadView | None = None
    # Dataset and trace runs: the requests over the model's context, counted before the run.
    limits: ContextCheck | None = None
    samples_dir: str
    locust_log: str

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(self.model_dump_json(indent=2) + "\n")
        tmp.replace(path)

    @classmethod
    def read(cls, path: Path) -> LoadReport:
        return cls.model_validate_json(path.read_text())

    @model_validator(mode="before")
    @classmethod
    def _old_checks(cls, data: Any) -> Any:
        """A report written before the checks left the summary keeps them there."""
        if not isinstance(data, dict) or "checks" in data:
            return data
        summary = data.get("summary")
        if not isinstance(summary, dict):
            return data
        old = [*summary.get("slo_checks", []), *summary.get("default_checks", [])]
        return {**data, "checks": old} if old else data


# --- console -----------------------------------------------------------------------------------
def _ms(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v / 1000:.2f}s" if v >= 10_000 else f"{v:.1f}"


def _row(name: str, d: Distribution | None) -> str:
    if d is None or d.count == 0:
        return f"  {name:<24} (no data)"
    cells = " ".join(f"{_ms(v):>9}" for v in (d.p50, d.p90, d.p95, d.p99, d.max))
    return f"  {name:<24}{cells}   n={d.count}"


def _secs(v: float) -> str:
    """30 -> '30s'; a run cut short shows a tenth: 4.52 -> '4.5s'."""
    return f"{v:g}s" if v == round(v) else f"{v:.1f}s"


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v:.1%}"


def goodput_line(s: LoadSummary) -> str:
    """Goodput as vLLM's bench gives it (requests per second within the window that met every
    per-request SLO), with the share of all requests sent, its n and bounds, and where its SLOs
    came from."""
    g = s.goodput
    n = g.n if g.n is not None else s.counts.total
    if g.basis == "none" or not g.slos:
        return (
            "no per-request SLO (none given, such as ttft_ms<=500 and itl_ms<=50, and no "
            "aggregate latency SLO such as ttft_p95_ms<=500 to derive one from); "
            f"{s.counts.ok} of {s.counts.total} requests succeeded"
        )
    bounds = (
        f" ({g.confidence:.0%} bounds [{_pct(g.lower)}, {_pct(g.upper)}])"
        if g.confidence is not None
        else ""
    )
    source = (
        f" (derived from the aggregate SLO{'s' if len(g.derived_from) > 1 else ''} "
        f"{', '.join(g.derived_from)}: no per-request SLO given)"
        if g.basis == "derived"
        else ""
    )
    return (
        f"{s.throughput.goodput_requests_per_second:.2f} req/s; {_pct(g.share)} of {n} requests"
        f"{bounds} meeting {', '.join(g.slos)}{source}"
    )


def render(report: LoadReport) -> str:
    s = report.summary
    g = s.generator
    lines = [
        f"load {report.config.get('name', '')}: {report.outcome.upper()}  "
        f"({s.counts.total} requests in {_secs(s.window.duration_s)}, model {report.model}, "
        f"target {report.target.get('url')})",
        f"  {'latency (ms)':<24}{'p50':>9} {'p90':>9} {'p95':>9} {'p99':>9} {'max':>9}",
        _row("time to first token", s.latency.ttft_ms),
        _row("inter-token latency", s.latency.itl_ms),
        _row("token gap (pooled)", s.latency.token_gap_ms),
        _row("time per output token", s.latency.tpot_ms),
        _row("end to end", s.latency.e2e_ms),
    ]
    if s.latency.ttft_from_intended_ms is not None:
        lines.append(_row("ttft from intended", s.latency.ttft_from_intended_ms))
    if s.latency.e2e_from_intended_ms is not None:
        lines.append(_row("e2e from intended", s.latency.e2e_from_intended_ms))
    t = s.throughput
    lines.append(
        f"  throughput (over the {_secs(s.window.duration_s)} window): "
        f"{t.requests_per_second:.2f} req/s, "
        f"{t.output_tokens_per_second:.1f} output tokens/s"
    )
    lines.append(f"  goodput: {goodput_line(s)}")
    c = s.counts
    err = f"  errors: {c.errors} ({_pct(c.error_rate)})"
    if c.errors:
        err += "  by status " + ", ".join(f"{k}: {v}" for k, v in c.by_status.items())
        err += "  by kind " + ", ".join(f"{k}: {v}" for k, v in c.by_kind.items())
    lines.append(err)
    # Shares of the requests answered with a status (a degraded 503 counts), as the summary's.
    answered = max(sum(s.served.counts.values()), 1)
    served = ", ".join(f"{k} {v / answered:.1%}" for k, v in s.served.counts.items())
    cache = s.cache
    lines.append(
        f"  served by: {served or '-'};  cache hit rate {_pct(cache.hit_rate)} "
        f"({cache.hits} hits, {cache.misses} misses, {cache.bypass} not cacheable)"
    )
    if g.mode == "open":
        lag = g.send_lag_ms
        lag_txt = (
            f"p50 {_ms(lag.p50)} p99 {_ms(lag.p99)} max {_ms(lag.max)} ms"
            if lag and lag.count
            else "-"
        )
        lines.append(
            f"  generator: open loop ({g.arrival}), offered {g.offered_rate_rps or 0:.2f} req/s, "
            f"sent {g.sent_rate_rps:.2f} req/s, achieved {g.achieved_rate_rps:.2f} req/s "
            f"over the {_secs(s.window.duration_s)} schedule window; send lag {lag_txt}"
        )
    else:
        lines.append(
            f"  generator: closed loop, sent {g.sent_rate_rps:.2f} req/s, "
            f"achieved {g.achieved_rate_rps:.2f} req/s over the {_secs(s.window.duration_s)} "
            "schedule window"
        )
    lines.append(
        f"  drain: {g.completed_after_window} request{'' if g.completed_after_window == 1 else 's'}"
        f" finished {g.drain_s:.1f}s after the window"
        + (f"; {g.retries} resent on a new connection (pooled one closed)" if g.retries else "")
    )
    seed = report.config.get("seed")
    if seed is not None:
        lines.append(f"  seed {seed} (--seed {seed} sends these prompts and arrivals again)")
    if report.limits is not None:
        lines.append(f"  {report.limits.line()}")
    for check in report.checks:
        kind = "CHECK" if check.default else "SLO"
        lines.append(f"  {kind} {check.decision.upper()}  {check.reason}")
    undecided = [c.expr for c in report.checks if c.decision == "inconclusive" and not c.default]
    if undecided:
        lines.append(
            f"  INCONCLUSIVE: {', '.join(undecided)} not decided on {s.counts.total} requests; "
            "an SLO that ends inconclusive has not passed (exit 1): run longer or at a higher "
            "rate for more samples"
        )
    guards = [c.expr for c in report.checks if c.decision == "inconclusive" and c.default]
    if guards:
        lines.append(
            f"  not decided on {s.counts.total} requests (default checks: they fail the run "
            f"only when decided against it): {', '.join(guards)}"
        )
    tag = "PARTIAL" if report.outcome == "interrupted" else "INVALID"
    for r in s.validity.reasons:
        lines.append(f"  {tag}: {r}")
    for w in s.validity.warnings:
        lines.append(f"  warning: {w}")
    if report.workload is not None:
        lines += render_view(report.workload)
    if report.server is not None:
        lines += _render_server(report.server)
    if report.ttft_breakdown is not None:
        lines += render_breakdown(report.ttft_breakdown)
    return "\n".join(lines)


def render_breakdown(b: TtftBreakdown) -> list[str]:
    """The TTFT breakdown as a table, then whether client and server agree."""
    left = ", ".join(f"{k}: {v}" for k, v in b.left_out.items())
    out = [
        f"  where the time to first token went ({b.requests} requests"
        + (f"; left out {left}" if left else "")
        + "):",
        f"    {'part (ms)':<38}{'p50':>8}{'p95':>8}   measured by",
    ]
    out += [f"    {n:<38}{a:>8}{c:>8}   {by}" for n, a, c, by in breakdown_rows(b)]
    u = b.unexplained_ms
    if u.count:
        out.append(
            f"    unexplained per request: p50 {u.p50:.1f} ms, p95 {u.p95:.1f} ms, "
            f"max {u.max:.1f} ms (n={u.count})"
        )
    if (decode := decode_line(b)) is not None:
        out.append(f"    {decode}")
    if b.server_error:
        out.append(f"    server histograms: {b.server_error}")
    if b.agreement is not None:
        tag = {"agree": "CHECK PASS", "warn": "WARN", "not judged": "not judged:"}
        out.append(f"  {tag[b.agreement.decision]}  client vs server TTFT: {b.agreement.reason}")
    return out


def _render_server(view: ServerView) -> list[str]:
    out = [f"  server side (Prometheus, window {view.window}):"]
    for p in view.profiles:
        vals = [
            f"{k} {v:.3g}"
            for k, v in p.values.items()
            if v is not None and not k.startswith(("e2e_p99", "itl_p99"))
        ]
        name = f"{p.profile} [{p.pool}]" if p.pool else p.profile
        out.append(f"    {name}: " + (", ".join(vals) or "no data"))
    for e in view.errors[:3]:
        out.append(f"    error: {e}")
    if not view.profiles and not view.errors:
        out.append("    no known metrics (gateway llm_*, vllm:*, llamacpp:*) found")
    return out
