"""Samples -> the run's numbers: latency distributions, throughput, errors, goodput, how requests
were served, the generator's own account, and whether the run is valid at all.

Latency distributions cover successful requests; failures are counted by status and kind, and
count against goodput. Every rate is over the schedule window (the run's `duration_s`, from the
first scheduled send): offered (the arrivals the schedule meant), sent, and achieved (successful
requests completed within the window, as guidellm counts them), so a server that falls behind
shows achieved < sent; what finished while the backlog drained after the window is counted apart
(`completed_after_window`, `drain_s`). Each is computed once, in `summarize`.

The summary carries figures only: the SLOs and the default checks are judged from it (and the
samples) in `harness/verdict/load_run.py`.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

from harness.data.samples import Sample
from harness.measure.stats import Distribution, distribution
from harness.measure.timeseries import SecondBucket, per_second
from harness.spec.slo import DISTRIBUTIONS, STATS, Slo, derived_per_request, parse_slos

_LENIENT = ConfigDict(extra="ignore")
_AGG = re.compile(rf"^({'|'.join(DISTRIBUTIONS)})_({'|'.join(STATS)})_ms$")
# A worker busier than this share of one core is itself adding latency.


@dataclass
class WorkerAccount:
    """What one worker's done file says about its run."""

    worker: int
    t0_s: float
    deadline_s: float
    scheduled: int = 0
    not_sent: int = 0
    cap_waits: int = 0
    unfinished: int = 0
    cpu_s: float = 0.0
    wall_s: float = 0.0


@dataclass
class RunContext:
    """What the summary needs to know about how the samples were produced."""

    start_s: float
    duration_s: float
    open_loop: bool
    arrival: str | None = None  # constant | poisson | burst (open loop)
    expected_requests: float | None = None  # open loop: arrivals the schedule offers
    max_send_lag_ms: float = 50.0
    slos: tuple[str, ...] = ()
    workers_expected: int = 1
    workers: list[WorkerAccount] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # from the runner (e.g. Locust died)
    # Set when SIGINT/SIGTERM stopped the run: seconds of the schedule that ran. The summary then
    # covers only that part (duration_s is that long); requests in flight at the stop are lost.
    interrupted_after_s: float | None = None
    # Judge the run by DEFAULT_CHECKS too (a user's SLO on the same figure replaces its default):
    # read by the verdict's run judge, not here.
    default_checks: bool = True
    # The workload repeats prompts at temperature 0: a response cache should answer the repeats
    # (the verdict judges the hits against them: harness/verdict/cache_hits.py).
    cache_repeats: bool = False
    # Said before the run (e.g. it repeats an earlier run's prompts); kept with the run's warnings.
    warnings: list[str] = field(default_factory=list)


class Window(BaseModel):
    model_config = _LENIENT
    start_s: float
    end_s: float
    duration_s: float
    span_s: float


class Counts(BaseModel):
    model_config = _LENIENT
    total: int
    ok: int
    errors: int
    error_rate: float | None
    by_status: dict[str, int]
    by_kind: dict[str, int]
    # tenant -> {"total", "ok", "errors", "rate_limited"} (per-key limits show up here)
    by_tenant: dict[str, dict[str, int]]
    output_tokens: int
    usage_reported: int  # successful requests whose server sent `usage`
    usage_chunk_mismatch: int  # ... where usage.completion_tokens != text events counted

    @property
    def incomplete(self) -> int:
        """Requests whose answer never completed: cut short, broken off with an error event, or
        stalled past the request timeout."""
        return sum(self.by_kind.get(k, 0) for k in ("incomplete", "stream_error", "timeout"))


class Latency(BaseModel):
    """Where each clock starts and stops: see the README's "Latency definitions"."""

    model_config = _LENIENT
    ttft_ms: Distribution
    # Per request (last token - first token) / (tokens - 1), percentiles across requests.
    itl_ms: Distribution
    # Every gap between consecutive streamed chunks of every request, pooled.
    token_gap_ms: Distribution = Distribution()
    tpot_ms: Distribution
    e2e_ms: Distribution
    ttfb_ms: Distribution
    ttft_from_intended_ms: Distribution | None = None
    e2e_from_intended_ms: Distribution | None = None


class Throughput(BaseModel):
    """Over the schedule window, as the generator's achieved rate."""

    model_config = _LENIENT
    requests_per_second: float  # the generator's achieved_rate_rps, the same figure
    output_tokens_per_second: float
    goodput_requests_per_second: float


class Goodput(BaseModel):
    """Requests that succeeded and met every per-request SLO (vLLM bench's and DistServe's
    goodput). `basis` says where those SLOs came from: `per_request` (given), `derived` (from the
    aggregate latency SLOs, `derived_from`: see `derived_per_request`) or `none` (no SLO bounds a
    request: `meeting` is then the successful requests, and no goodput is claimed). The bounds
    are set by the verdict (`harness/verdict/goodput.py`) at `confidence`; None until then, and
    in reports written before they were kept."""

    model_config = _LENIENT
    slos: list[str]
    meeting: int
    share: float | None
    basis: Literal["per_request", "derived", "none"] | None = None
    derived_from: list[str] = []
    n: int | None = None
    lower: float | None = None
    upper: float | None = None
    confidence: float | None = None


class Served(BaseModel):
    """Who answered, by the X-Served-By header: a pool name, "cache" or "degraded"."""

    model_config = _LENIENT
    # Header value (or "unknown") -> requests answered with an HTTP status, errors included: a
    # degraded answer is a 503, and the share of those is what a fault experiment looks at.
    counts: dict[str, int]
    primary_share: float | None
    fallback_share: float | None
    cache_share: float | None
    degraded_share: float | None
    unknown_share: float | None


class Cache(BaseModel):
    """By the X-Cache header: hit, miss, or bypass (request not eligible for the cache)."""

    model_config = _LENIENT
    hits: int
    misses: int
    bypass: int
    unknown: int
    hit_rate: float | None  # hits / (hits + misses); None when no response said


class Generator(BaseModel):
    model_config = _LENIENT
    """The generator's account. Every `*_rate_rps` is per second of the schedule window
    (`window.duration_s`), none over the drain after it; a gate's pooled summary puts its looks'
    windows end to end, so its rates are over all looks."""

    mode: str  # "open" | "closed"
    arrival: str | None
    # The arrivals the schedule meant (expected_requests) per second of the window.
    offered_rate_rps: float | None
    expected_requests: float | None
    sent: int
    # Requests sent (the schedule's draw: poisson can send more or fewer than offered).
    sent_rate_rps: float
    # Successful requests completed within the window, per second of it (throughput's
    # requests_per_second is this figure).
    achieved_rate_rps: float
    # Open loop: achieved / sent over the window, i.e. the share of the requests sent that
    # completed successfully within it (the stack kept up when it is near 1).
    achieved_ratio: float | None = None
    # After the window: how long the last requests took to finish, and how many finished then.
    drain_s: float = 0.0
    completed_after_window: int = 0
    # Requests sent again on a new connection after a pooled one turned out closed.
    retries: int = 0
    not_sent: int
    cap_waits: int
    unfinished: int
    send_lag_ms: Distribution | None
    workers_expected: int
    workers_done: int
    cpu_share_max: float | None  # busiest worker: CPU seconds / wall seconds


NOT_JUDGED = "not judged"


class Validity(BaseModel):
    """Whether the run measured the server, not the client: judged by the verdict
    (`harness/verdict/validity.py`); a summary nobody judged says so and is not valid."""

    model_config = _LENIENT
    valid: bool
    reasons: list[str]
    warnings: list[str]


class LoadSummary(BaseModel):
    model_config = _LENIENT
    window: Window
    counts: Counts
    latency: Latency
    throughput: Throughput
    goodput: Goodput
    served: Served
    cache: Cache
    generator: Generator
    validity: Validity
    timeseries: list[SecondBucket] = []  # empty in chaos phases (the timeline has it)

    def metric(self, name: str) -> float | None:
        """An aggregate figure by SLO name (`ttft_p95_ms`, `error_rate`, ...)."""
        m = _AGG.match(name)
        if m:
            dist_name, stat = m.group(1), m.group(2)
            dist = (
                self.generator.send_lag_ms
                if dist_name == "send_lag"
                else getattr(self.latency, f"{dist_name}_ms", None)
            )
            return dist.stat(stat) if isinstance(dist, Distribution) else None
        scalars: dict[str, float | None] = {
            "error_rate": self.counts.error_rate,
            "achieved_ratio": self.generator.achieved_ratio,
            "requests_per_second": self.throughput.requests_per_second,
            "output_tokens_per_second": self.throughput.output_tokens_per_second,
            "goodput": self.goodput.share,
            "goodput_requests_per_second": self.throughput.goodput_requests_per_second,
            "cache_hit_rate": self.cache.hit_rate,
            "primary_share": self.served.primary_share,
            "fallback_share": self.served.fallback_share,
            "cache_share": self.served.cache_share,
            "degraded_share": self.served.degraded_share,
            "incomplete_share": _share(self.counts.incomplete, self.counts.total),
            "rate_limited_share": _share(self.counts.by_status.get("429", 0), self.counts.total),
        }
        if name not in scalars:
            raise KeyError(f"unknown metric {name!r}")
        return scalars[name]


def _by_tenant(samples: Sequence[Sample]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for s in samples:
        t = out.setdefault(s.tenant, {"total": 0, "ok": 0, "errors": 0, "rate_limited": 0})
        t["total"] += 1
        t["ok" if s.ok else "errors"] += 1
        t["rate_limited"] += s.status == 429
    return dict(sorted(out.items()))


def _share(n: int, total: int) -> float | None:
    return n / total if total else None


def _request_value(s: Sample, metric: str) -> float | None:
    if metric == "ttft_ms":
        return s.ttft_ms
    if metric == "e2e_ms":
        return s.e2e_ms
    if metric == "tpot_ms":
        return s.tpot_ms
    if metric == "itl_ms":
        return s.itl_ms
    if metric == "token_gap_max_ms":
        return s.token_gap_max_ms
    lag = (s.send_lag_ms or 0.0) if s.intended_s is not None else 0.0
    if metric == "ttft_from_intended_ms":
        return None if s.ttft_ms is None else s.ttft_ms + lag
    if metric == "e2e_from_intended_ms":
        return s.e2e_ms + lag
    raise KeyError(metric)


def _meets(s: Sample, slos: list[Slo]) -> bool:
    if not s.ok:
        return False
    for slo in slos:
        v = _request_value(s, slo.metric)
        if v is None or not slo.holds(v):
            return False
    return True


def _latency(ok: list[Sample], open_loop: bool) -> Latency:
    gaps = np.fromiter((g for s in ok for g in s.token_gaps_ms), dtype=np.float64)
    lat = Latency(
        ttft_ms=distribution([s.ttft_ms for s in ok if s.ttft_ms is not None]),
        itl_ms=distribution([v for s in ok if (v := s.itl_ms) is not None]),
        token_gap_ms=distribution(gaps),
        tpot_ms=distribution([t for s in ok if (t := s.tpot_ms) is not None]),
        e2e_ms=distribution([s.e2e_ms for s in ok]),
        ttfb_ms=distribution([s.ttfb_ms for s in ok if s.ttfb_ms is not None]),
    )
    if open_loop:
        lat.ttft_from_intended_ms = distribution(
            [v for s in ok if (v := _request_value(s, "ttft_from_intended_ms")) is not None]
        )
        lat.e2e_from_intended_ms = distribution([s.e2e_ms + (s.send_lag_ms or 0.0) for s in ok])
    return lat


def summarize(samples: Sequence[Sample], ctx: RunContext) -> LoadSummary:
    ok = [s for s in samples if s.ok]
    last_done = max((s.done_s for s in samples), default=ctx.start_s)
    span = max(ctx.duration_s, last_done - ctx.start_s)
    window_end = ctx.start_s + ctx.duration_s
    # Rates count what completed within the scheduled window (guidellm's benchmark window);
    # what finished while the backlog drained afterwards is reported apart.
    ok_in_window = [s for s in ok if s.done_s <= window_end]
    window = Window(
        start_s=ctx.start_s,
        end_s=ctx.start_s + ctx.duration_s,
        duration_s=ctx.duration_s,
        span_s=span,
    )

    statuses = Counter(str(s.status) for s in samples if not s.ok)
    kinds = Counter(s.error or "" for s in samples if not s.ok)
    tokens = sum(s.tokens for s in ok)
    usage = [s for s in ok if s.output_tokens is not None]
    counts = Counts(
        total=len(samples),
        ok=len(ok),
        errors=len(samples) - len(ok),
        error_rate=_share(len(samples) - len(ok), len(samples)),
        by_status=dict(sorted(statuses.items())),
        by_kind=dict(sorted(kinds.items())),
        by_tenant=_by_tenant(samples),
        output_tokens=tokens,
        usage_reported=len(usage),
        usage_chunk_mismatch=sum(1 for s in usage if s.output_tokens != s.output_chunks),
    )

    slos = parse_slos(ctx.slos)
    per_request = [s for s in slos if s.scope == "request"]
    derived = [] if per_request else derived_per_request(slos)
    per_request = per_request or [slo for slo, _ in derived]
    meeting = sum(1 for s in samples if _meets(s, per_request))
    goodput = Goodput(
        slos=[s.expr for s in per_request],
        meeting=meeting,
        share=_share(meeting, len(samples)),
        basis="derived" if derived else "per_request" if per_request else "none",
        derived_from=[agg.expr for _, agg in derived],
        n=len(samples),
    )

    answered = [s for s in samples if s.status > 0]
    served_counts = Counter((s.x_served_by or "unknown").lower() for s in answered)
    served = Served(
        counts=dict(sorted(served_counts.items())),
        primary_share=_share(served_counts.get("primary", 0), len(answered)),
        fallback_share=_share(served_counts.get("fallback", 0), len(answered)),
        cache_share=_share(served_counts.get("cache", 0), len(answered)),
        degraded_share=_share(served_counts.get("degraded", 0), len(answered)),
        unknown_share=_share(served_counts.get("unknown", 0), len(answered)),
    )
    cache_vals = Counter((s.x_cache or "").lower() for s in ok)
    hits, misses, bypass = (cache_vals.get(k, 0) for k in ("hit", "miss", "bypass"))
    cache = Cache(
        hits=hits,
        misses=misses,
        bypass=bypass,
        unknown=len(ok) - hits - misses - bypass,
        hit_rate=_share(hits, hits + misses),
    )

    lags = [lag for s in samples if (lag := s.send_lag_ms) is not None]
    sent_rate = len(samples) / ctx.duration_s
    achieved = len(ok_in_window) / ctx.duration_s
    cpu = [w.cpu_s / w.wall_s for w in ctx.workers if w.wall_s > 0]
    gen = Generator(
        mode="open" if ctx.open_loop else "closed",
        arrival=ctx.arrival,
        offered_rate_rps=(ctx.expected_requests / ctx.duration_s)
        if ctx.expected_requests
        else None,
        expected_requests=ctx.expected_requests,
        sent=len(samples),
        sent_rate_rps=sent_rate,
        achieved_rate_rps=achieved,
        not_sent=sum(w.not_sent for w in ctx.workers),
        cap_waits=sum(w.cap_waits for w in ctx.workers),
        unfinished=sum(w.unfinished for w in ctx.workers),
        achieved_ratio=achieved / sent_rate if ctx.open_loop and sent_rate > 0 else None,
        drain_s=max(0.0, last_done - window_end),
        completed_after_window=sum(1 for s in samples if s.done_s > window_end),
        retries=sum(s.retries for s in samples),
        send_lag_ms=distribution(lags) if ctx.open_loop else None,
        workers_expected=ctx.workers_expected,
        workers_done=len(ctx.workers),
        cpu_share_max=max(cpu) if cpu else None,
    )
    return LoadSummary(
        window=window,
        counts=counts,
        latency=_latency(ok, ctx.open_loop),
        throughput=Throughput(
            requests_per_second=achieved,
            output_tokens_per_second=sum(s.tokens for s in ok_in_window) / ctx.duration_s,
            goodput_requests_per_second=sum(1 for s in ok_in_window if _meets(s, per_request))
            / ctx.duration_s,
        ),
        goodput=goodput,
        served=served,
        cache=cache,
        generator=gen,
        # Judged by the verdict (harness/verdict/validity.py) for the runs whose numbers decide.
        validity=Validity(valid=False, reasons=[NOT_JUDGED], warnings=[]),
        timeseries=per_second(samples, ctx.start_s, span),
    )
