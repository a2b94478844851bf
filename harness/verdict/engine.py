"""The model servers' own state during the SLO load, judged against the policy (`policy.engine`):
preemptions, the KV cache's peak usage, the queue time p95 and the prefix-cache hit share, each
from the servers' metrics over the load window (harness/measure/server.py) and, for the hit
share, from what each answer said it took from the cache.

A server that does not export a figure skips its check, with the reason; a server kind known to
export it (vLLM; the simulator, which exports vLLM's names) fails instead, so a candidate cannot
hide its engine state by hiding its metrics. docs/engine.md has the table.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Literal

from harness.data.samples import Sample
from harness.load.reuse import Reuse, served_by_server
from harness.measure.server import QUEUE_Q, ServerFigures, ServerView
from harness.spec.policy import EnginePolicy
from harness.verdict.checks import CheckResult, Outcome

CATEGORY = "engine"
PREEMPTIONS = "engine: preemptions during the load"
KV_CACHE = "engine: KV cache usage under its ceiling"
QUEUE = "engine: queue time p95"
PREFIX = "engine: prefix-cache hit share"
NAMES = (PREEMPTIONS, KV_CACHE, QUEUE, PREFIX)

Check = Literal["preemptions", "kv", "queue", "prefix"]
# The metric a reason names, by profile and check.
METRIC: dict[tuple[str, Check], str] = {
    ("vllm", "preemptions"): "vllm:num_preemptions_total",
    ("vllm", "kv"): "vllm:kv_cache_usage_perc",
    ("vllm", "queue"): "vllm:request_queue_time_seconds",
    ("vllm", "prefix"): "vllm:prefix_cache_hits / vllm:prefix_cache_queries",
    ("llamacpp", "preemptions"): "a preemption counter",
    ("llamacpp", "kv"): "llamacpp:kv_cache_usage_ratio",
    ("llamacpp", "queue"): "llamacpp:requests_deferred",
    ("llamacpp", "prefix"): (
        "llamacpp:prompt_tokens_cached_total / (itself + llamacpp:prompt_tokens_total)"
    ),
}
# What each pinned server kind is known to export, by check (the figure, the metric): missing
# there, the check fails. The simulator's queue-time histogram has a series only once a request
# has waited, so its waiting-requests gauge (always there) is what it must export; its prefix
# counters exist only with its KV cache on (off, its answers say 0 cached tokens).
KNOWN: dict[str, dict[Check, tuple[str, str]]] = {
    "vllm": {
        "preemptions": ("preemptions", "vllm:num_preemptions_total"),
        "kv": ("kv_cache_usage_max", "vllm:kv_cache_usage_perc"),
        "queue": ("queue_time_buckets", "vllm:request_queue_time_seconds"),
        "prefix": ("prefix_cache_queries", "vllm:prefix_cache_queries_total"),
    },
    "simulator": {
        "kv": ("kv_cache_usage_max", "vllm:kv_cache_usage_perc"),
        "queue": ("queue_depth_max", "vllm:num_requests_waiting"),
    },
}
# Why a check skips on a server kind that does not export its figure.
NOT_EXPORTED: dict[tuple[str, Check], str] = {
    ("simulator", "preemptions"): (
        "llm-d-inference-sim v0.10.2 (the pinned version; no newer one can be installed here) "
        "exports no vllm:num_preemptions_total: it never preempts"
    ),
    ("llama_cpp", "preemptions"): "llama.cpp exports no preemption counter",
    ("llama_cpp", "kv"): (
        "this llama.cpp build exports no llamacpp:kv_cache_usage_ratio (gone upstream)"
    ),
    ("llama_cpp", "prefix"): "this llama.cpp build exports no llamacpp:prompt_tokens_cached_total",
    ("simulator", "prefix"): (
        "llm-d-inference-sim counts prefix-cache hits (vllm:prefix_cache_hits) only with its KV "
        "cache on (enable_kvcache: true); off, it reuses nothing"
    ),
}
# Fewer answers than this with their cached tokens: the hit share is the counters' estimate.
MIN_PER_REQUEST = 20
# A workload that could reuse less than this share of its prompt tokens has nothing to judge.
MIN_REUSE = 0.05


@dataclass(frozen=True)
class Server:
    """One pool's servers as Prometheus saw them (figs None: none of their metrics)."""

    where: str  # "primary", "fallback", or the profile's name where targets carry no pool
    kind: str | None  # the stack spec's server kind; None where not known
    figs: ServerFigures | None

    def has(self, figure: str) -> bool:
        return self.figs is not None and figure not in self.figs.unavailable

    def value(self, figure: str) -> float | None:
        return None if self.figs is None else self.figs.values.get(figure)

    @property
    def label(self) -> str:
        return f"{self.where} ({self.kind})" if self.kind else self.where


def servers(view: ServerView, kinds: Mapping[str, str]) -> list[Server]:
    """Each pool's model-server figures, with its kind; a pool of a kind that exports vLLM's or
    llama.cpp's names but has no figures in the view is listed with none."""
    out: list[Server] = []
    one_kind = next(iter(set(kinds.values()))) if len(set(kinds.values())) == 1 else None
    for figs in view.profiles:
        if figs.profile == "gateway":
            continue
        where = figs.pool or figs.profile
        out.append(Server(where, kinds.get(figs.pool or "", one_kind), figs))
    seen = {s.where for s in out}
    pooled = any(f.pool for f in view.profiles)
    for pool, kind in kinds.items():
        if pool not in seen and kind in KNOWN and (pooled or not out):
            out.append(Server(pool, kind, None))
    return out


def _result(
    name: str, outcome: Outcome, reasons: list[str], measured: dict[str, float | int | str | None]
) -> CheckResult:
    return CheckResult(
        name=name, category=CATEGORY, outcome=outcome, reasons=reasons, measured=measured
    )


def _metric(s: Server, check: Check) -> str:
    """The metric a check read on this server: the one its query named, else the usual one."""
    figure = {"kv": "kv_cache_usage_max", "queue": "queue_time_observed"}.get(check, "")
    query = s.figs.queries.get(figure, "") if s.figs else ""
    if used := _METRIC_NAME.search(query):
        return used.group(0).removesuffix("_count")
    profile = s.figs.profile if s.figs else ("llamacpp" if s.kind == "llama_cpp" else "vllm")
    return METRIC.get((profile, check), check)


_METRIC_NAME = re.compile(r"(vllm|llamacpp):[a-z_]+")


def _hidden(found: Sequence[Server], check: Check) -> list[str]:
    """Why servers known to export the check's figure fail it: their /metrics lack it."""
    out: list[str] = []
    for s in found:
        known = KNOWN.get(s.kind or "", {}).get(check)
        if known is None or s.has(known[0]):
            continue
        what = "no vLLM metric at all" if s.figs is None else f"no {known[1]}"
        out.append(
            f"{s.label}: its /metrics has {what}, which a {s.kind} server exports: a candidate "
            "must not hide its engine state by hiding its metrics"
        )
    return out


def _skipped(name: str, found: Sequence[Server], check: Check, view: ServerView) -> CheckResult:
    why: list[str] = []
    for s in found:
        kind = s.kind or (s.figs.profile if s.figs else "")
        text = NOT_EXPORTED.get((kind, check)) or f"{s.label} exports no {_metric(s, check)}"
        why.append(text)
    if not found:
        why.append(
            "no model-server metrics in Prometheus (vllm:*, llamacpp:*)"
            + (f": {view.errors[0]}" if view.errors else "")
        )
    return _result(name, "skipped", list(dict.fromkeys(why)), {})


def _busy(s: Server) -> bool:
    """Did these servers take requests in the window (as far as their metrics tell)?"""
    return any((s.value(f) or 0) > 0 for f in ("requests_finished", "prompt_tokens_per_second"))


def _gauge(s: Server) -> bool:
    return s.value("queue_depth_max") is not None


def _values(found: Sequence[Server], figure: str) -> list[tuple[Server, float]]:
    """The servers that have a value for `figure` in the window, with it."""
    return [(s, v) for s in found if (v := s.value(figure)) is not None]


def judge_preemptions(
    view: ServerView, found: Sequence[Server], policy: EnginePolicy
) -> CheckResult:
    hidden = _hidden(found, "preemptions")
    counted = _values(found, "preemptions")
    if not counted and not hidden:
        return _skipped(PREEMPTIONS, found, "preemptions", view)
    total = round(sum(v for _, v in counted))
    each = ", ".join(f"{s.where} +{v:g}" for s, v in counted) or "none counted"
    ok = total <= policy.max_preemptions
    reasons = hidden + (
        []
        if not counted
        else [
            f"{total} requests preempted over the load window {view.window} "
            f"(vllm:num_preemptions_total: {each}); policy at most {policy.max_preemptions}"
            + ("" if ok else ": each one restarted its prefill")
        ]
    )
    outcome: Outcome = "fail" if hidden or not ok else "pass"
    return _result(PREEMPTIONS, outcome, reasons, {"preemptions": total if counted else None})


def judge_kv_cache(view: ServerView, found: Sequence[Server], policy: EnginePolicy) -> CheckResult:
    hidden = _hidden(found, "kv")
    peaks = _values(found, "kv_cache_usage_max")
    if not peaks and not hidden:
        return _skipped(KV_CACHE, found, "kv", view)
    top = max((v for _, v in peaks), default=None)
    reasons = list(hidden)
    if top is not None:
        worst = next(s for s, v in peaks if v == top)
        each = ", ".join(f"{s.where} {v:.3g}" for s, v in peaks)
        reasons.append(
            f"highest KV cache usage {top:.3g} ({worst.where}, {_metric(worst, 'kv')}, the most "
            f"of 1 s samples over {view.window}: {each}); policy ceiling {policy.kv_cache_max:g}"
            + (": preemption is near" if top > policy.kv_cache_max else "")
        )
    bad = hidden or (top is not None and top > policy.kv_cache_max)
    return _result(KV_CACHE, "fail" if bad else "pass", reasons, {"kv_cache_usage_max": top})


def _queue_from_buckets(
    s: Server, bound_ms: float
) -> tuple[Literal["pass", "fail", "inconclusive"], str, float | None]:
    n = int(s.value("queue_time_requests") or 0)
    low = s.value("queue_time_p95_low_ms") or 0.0
    high, est = s.value("queue_time_p95_high_ms"), s.value("queue_time_p95_ms")
    zeros = int(s.value("queue_time_unobserved") or 0)
    where = "between 0 and" if low == 0 else f"above {low:g} ms and at most"
    span = "0 ms" if high == 0 else f"{where} {high:g} ms" if high is not None else f"> {low:g} ms"
    text = (
        f"{s.where}: queue time p95 {span} (the {QUEUE_Q:.0%} nearest rank of {n} requests "
        f"finished in the window, from {_metric(s, 'queue')}'s buckets"
        + (f"; {zeros} requests without an observation waited 0" if zeros else "")
        + ")"
    )
    if high is not None and high <= bound_ms:
        return "pass", text, est
    if low >= bound_ms:
        return "fail", text, est
    # The bound lies inside the p95's bucket: decided on the interpolated estimate, said so.
    decision: Literal["pass", "fail"] = "pass" if est is not None and est <= bound_ms else "fail"
    return decision, f"{text}; the bound falls inside that bucket: interpolated {est:.0f} ms", est


def _queue_from_gauge(
    s: Server, bound_ms: float, served_rps: float, window_s: float
) -> tuple[Literal["pass", "fail", "inconclusive"], str, float | None]:
    top, mean = s.value("queue_depth_max") or 0.0, s.value("queue_depth_mean") or 0.0
    vllm = s.figs is not None and s.figs.profile == "vllm"
    metric = "vllm:num_requests_waiting" if vllm else "llamacpp:requests_deferred"
    if top == 0:
        return (
            "pass",
            f"{s.where}: no request seen waiting ({metric} 0 in every 1 s sample; no queue-time "
            "histogram: a wait shorter than a scrape can go unseen)",
            0.0,
        )
    # Little's law: mean wait = mean queue length / arrival rate (this pool's own count where
    # it exports one; llama.cpp does not, so the requests servers answered in all).
    finished = s.value("requests_finished")
    rate = served_rps if finished is None else finished / window_s
    if rate <= 0:
        return "inconclusive", f"{s.where}: requests waited but none was served", None
    wait_ms = 1000 * mean / rate
    text = (
        f"{s.where}: mean queue time {wait_ms:.0f} ms by Little's law ({mean:.3g} requests "
        f"waiting on average ({metric}, at most {top:g}) / {rate:.3g} requests/s); no "
        "queue-time histogram, so a mean, not a p95"
    )
    if wait_ms <= (1 - QUEUE_Q) * bound_ms:
        # Markov's inequality: at most mean / bound of the requests waited longer than the bound.
        return "pass", f"{text}: at most {wait_ms / bound_ms:.1%} waited over the bound", wait_ms
    if wait_ms > bound_ms:
        return "fail", f"{text}: the mean alone is over the bound", wait_ms
    return "inconclusive", f"{text}: a mean this high does not decide the p95", wait_ms


def judge_queue(
    view: ServerView,
    found: Sequence[Server],
    policy: EnginePolicy,
    served_rps: float,
    inconclusive_is: Literal["warn", "fail"],
) -> CheckResult:
    window_s = max(1.0, view.end_s - view.start_s)
    hidden = _hidden(found, "queue")
    bound = policy.queue_p95_ms
    judged: list[tuple[str, str, float | None]] = []
    for s in found:
        if s.value("queue_time_requests"):
            judged.append(_queue_from_buckets(s, bound))
        elif _gauge(s):
            judged.append(_queue_from_gauge(s, bound, served_rps, window_s))
    if not judged and not hidden:
        return _skipped(QUEUE, found, "queue", view)
    decisions = [d for d, _, _ in judged]
    outcome: Outcome = (
        "fail"
        if hidden or "fail" in decisions
        else inconclusive_is
        if "inconclusive" in decisions
        else "pass"
    )
    reasons = hidden + [t for _, t, _ in judged] + [f"policy: p95 at most {bound:g} ms"]
    worst = max((v for _, _, v in judged if v is not None), default=None)
    return _result(QUEUE, outcome, reasons, {"queue_p95_ms": worst, "bound_ms": bound})


@dataclass(frozen=True)
class HitShare:
    estimate: float
    low: float | None  # one-sided bounds at alpha; None: a point estimate
    high: float | None
    n: int
    source: str


def per_request_share(samples: Sequence[Sample], alpha: float) -> HitShare | None:
    """Prompt tokens the answers said came from the cache, over their prompt tokens, with
    one-sided bounds from the ratio estimator's standard error (requests are the sampling unit)."""
    pairs = [
        (float(s.cached_tokens), float(s.prompt_tokens))
        for s in served_by_server(samples)
        if s.cached_tokens is not None and s.prompt_tokens
    ]
    n = len(pairs)
    if n < MIN_PER_REQUEST:
        return None
    cached, prompt = sum(c for c, _ in pairs), sum(p for _, p in pairs)
    r = cached / prompt
    spread = sum((c - r * p) ** 2 for c, p in pairs) / (n - 1)
    se = math.sqrt(spread / n) / (prompt / n)
    z = NormalDist().inv_cdf(1 - alpha)
    return HitShare(
        r,
        max(0.0, r - z * se),
        min(1.0, r + z * se),
        n,
        "the answers' cached prompt tokens (usage.prompt_tokens_details.cached_tokens, "
        "llama.cpp timings.cache_n)",
    )


def counter_share(found: Sequence[Server]) -> HitShare | None:
    """The servers' prefix-cache counters over the window: a point estimate (no unit to bound)."""
    pairs = [(s.value("prefix_cache_hits"), s.value("prefix_cache_queries")) for s in found]
    hits = sum(h for h, q in pairs if h is not None and q is not None)
    queries = sum(q for h, q in pairs if h is not None and q is not None)
    if not queries:
        return None
    names = sorted({_metric(s, "prefix") for s in found if s.value("prefix_cache_queries")})
    return HitShare(hits / queries, None, None, round(queries), " / ".join(names))


def judge_prefix(
    view: ServerView,
    found: Sequence[Server],
    policy: EnginePolicy,
    samples: Sequence[Sample],
    reuse: Reuse,
    alpha: float,
    inconclusive_is: Literal["warn", "fail"],
) -> CheckResult:
    if reuse.share is None:
        return _result(PREFIX, "skipped", [f"nothing to compare with: {reuse.how}"], {})
    if reuse.share < MIN_REUSE:
        return _result(
            PREFIX,
            "skipped",
            [f"the workload could reuse only {reuse.share:.1%} of its prompt tokens ({reuse.how})"],
            {"expected_share": round(reuse.share, 4)},
        )
    hidden = _hidden(found, "prefix")
    counters = counter_share(found)
    share = per_request_share(samples, alpha) or counters
    if share is None and not hidden:
        return _skipped(PREFIX, found, "prefix", view)
    target = policy.min_prefix_reuse_ratio * reuse.share
    yardstick = (
        f"at least {policy.min_prefix_reuse_ratio:g} x the {reuse.share:.1%} the workload "
        f"could reuse = {target:.1%} ({reuse.how})"
    )
    reasons = list(hidden)
    decision: Literal["pass", "fail", "inconclusive"] = "fail"
    if share is not None:
        if share.low is None or share.high is None:
            decision = "pass" if share.estimate >= target else "fail"
            how = f"a point estimate from {share.source} over {share.n} prompt tokens"
        else:
            decision = (
                "pass" if share.low >= target else "fail" if share.high < target else "inconclusive"
            )
            how = (
                f"{1 - alpha:.0%} bounds {share.low:.1%} to {share.high:.1%}, n={share.n} "
                f"requests, from {share.source}"
            )
        reasons.insert(
            0, f"prefix-cache hit share {share.estimate:.1%} ({how}); policy {yardstick}"
        )
        if counters is not None and share is not counters:
            reasons.append(f"the servers' counters say {counters.estimate:.1%} ({counters.source})")
        # Why a server has no counters (the simulator with its cache off), beside its share.
        reasons += dict.fromkeys(
            why
            for s in found
            if s.value("prefix_cache_queries") is None
            and _busy(s)
            and (why := NOT_EXPORTED.get((s.kind or "", "prefix")))
        )
    outcome: Outcome = (
        "fail"
        if hidden or decision == "fail"
        else inconclusive_is
        if decision == "inconclusive"
        else "pass"
    )
    return _result(
        PREFIX,
        outcome,
        reasons,
        {
            "hit_share": None if share is None else round(share.estimate, 4),
            "hit_share_low": None if share is None or share.low is None else round(share.low, 4),
            "expected_share": round(reuse.share, 4),
            "target": round(target, 4),
        },
    )


def judge_engine(
    view: ServerView | None,
    kinds: Mapping[str, str],
    policy: EnginePolicy,
    samples: Sequence[Sample],
    reuse: Reuse,
    *,
    alpha: float = 0.05,
    inconclusive_is: Literal["warn", "fail"] = "fail",
    no_prometheus: str = "no Prometheus to read the model servers' metrics from",
) -> list[CheckResult]:
    """The four engine checks over the load window of `view` (None: no Prometheus). `kinds`: each
    pool's server kind from the stack spec (pool -> "vllm" | "simulator" | "llama_cpp")."""
    if view is None:
        return [
            _result(n, "skipped", [f"cannot run on this stack: {no_prometheus}"], {}) for n in NAMES
        ]
    found = servers(view, kinds)
    if view.errors and not any(s.figs for s in found):
        why = f"the model servers' metrics could not be read: {view.errors[0]}"
        return [_result(n, "error", [why], {}) for n in NAMES]
    window_s = max(1.0, view.end_s - view.start_s)
    served_rps = len(served_by_server(samples)) / window_s
    return [
        judge_preemptions(view, found, policy),
        judge_kv_cache(view, found, policy),
        judge_queue(view, found, policy, served_rps, inconclusive_is),
        judge_prefix(view, found, policy, samples, reuse, alpha, inconclusive_is),
    ]
