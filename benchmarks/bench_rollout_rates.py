"""Benchmark (not a test): how often a canary step decides wrongly, and how soon it decides.

    .venv/bin/python benchmarks/bench_rollout_rates.py [--trials 100] [--resamples 300]
    .venv/bin/python benchmarks/bench_rollout_rates.py --shares 0.2 --per-look 600 --no-record

Each trial plays one canary step through `harness.verdict.rollout.look_at_step` with the
rollout profile's real `Analysis` (its margins; `--max-looks`, `--alpha`, `--resamples`
override): the step's requests are drawn once, look k judges the first k * per-look of them
(the candidate's share of each look, the rest the baseline's), and the first look that does not
hold ends the step (promote or abort; the last look aborts when a figure is still undecided).
Requests are synthetic samples: TTFT log-normal (median 40 ms, spread `--sigma`), 15 token gaps
per request (a per-request level, median 20 ms with the same spread, times a log-normal jitter),
end-to-end = TTFT + the gaps; a share `--error-rate` are HTTP 500s and `--fallback-share` of the
answers come from the fallback.

0. Computed, not drawn: per look, the fewest candidate requests at which a rate with no event in
   either version shows no worse than its margin (below that a step cannot promote).
1. False aborts: baseline and candidate drawn from the same distributions, over candidate
   shares and requests per look: how often the step promotes, aborts on a figure shown worse
   (by chance), aborts undecided at its bound, the mean look at which it decides, and which
   figures blocked the aborts.
2. Wrong promotes: a candidate exactly at the margins (every latency times 1 + the TTFT p50
   margin, +10% by default: TTFT p50, ITL p50 and e2e p50 all at their margins) must be promoted
   at most alpha of the time; one +20% slower should abort. The same for the fallback share: the
   baseline's plus the margin (+1 pp; promote <= alpha) and plus 3 pp (abort).
3. Stalls shared by a second's requests (`--stall-*`): identical versions at a request rate
   (`--stall-rate-rps`, half of it to the candidate), each version stalled in a share of the
   seconds (`--stall-share`: every latency of its requests sent in that second times
   `--stall-factor`), as a descheduled process stalls all its streams at once. How often the
   step aborts when the analysis resamples whole seconds (as `look_at_step` does) and when it
   resamples single requests (as if they were independent).

Trials run in `--jobs` processes. It asserts nothing, and appends the main figures to
benchmarks/figures.jsonl (`--no-record`: not).
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from figures import record  # noqa: E402

from harness.data.samples import Sample  # noqa: E402
from harness.spec.rollout import Analysis, Margins  # noqa: E402
from harness.verdict import rollout as rollout_verdict  # noqa: E402
from harness.verdict.rates import Count, newcombe_interval  # noqa: E402
from harness.verdict.rollout import look_at_step  # noqa: E402
from harness.verdict.sequential import SequentialPlan  # noqa: E402

TTFT_MS = 40.0
GAP_MS = 20.0
GAPS = 15  # token gaps per request (16 output tokens)


@dataclass(frozen=True)
class Version:
    """How one version's requests are drawn."""

    slow: float = 0.0  # every latency times 1 + slow
    error_rate: float = 0.0
    fallback_share: float = 0.0
    stall_share: float = 0.0  # the share of seconds in which this version is stalled
    stall_factor: float = 1.0  # every latency of a stalled second's requests times this


@dataclass(frozen=True)
class Case:
    share: float
    per_look: int
    base: Version
    cand: Version
    analysis: Analysis
    sigma: float
    seed: int
    # Requests a second, both versions together (None: one request a second, each its own).
    rate_rps: float | None = None
    # The width of the analysis' clusters (its CLUSTER_S): tiny makes each request its own.
    cluster_s: float = rollout_verdict.CLUSTER_S


@dataclass(frozen=True)
class Outcome:
    decision: str  # promote | abort
    look: int
    worse: bool  # aborted on a figure shown worse (else: undecided at the bound)
    blocking: tuple[str, ...]  # the figures behind an abort


def draw(
    n: int, v: Version, sigma: float, rng: np.random.Generator, rate: float | None = None
) -> list[Sample]:
    """n requests of one version, sent `rate` a second (None: one a second)."""
    sent = np.arange(n) / rate if rate else np.arange(n, dtype=float)
    second = np.floor(sent).astype(np.int64)
    seconds = int(second[-1]) + 1 if n else 0
    # No draw without stalls: tables 1 and 2 keep the random streams they were measured with.
    stalled = rng.random(seconds) < v.stall_share if v.stall_share else np.zeros(seconds, bool)
    f = (1.0 + v.slow) * np.where(stalled[second], v.stall_factor, 1.0)
    ttft = f * rng.lognormal(np.log(TTFT_MS), sigma, n)
    level = f * rng.lognormal(np.log(GAP_MS), sigma, n)
    gaps = level[:, None] * rng.lognormal(0.0, 0.3, (n, GAPS))
    err = rng.random(n) < v.error_rate
    fallback = rng.random(n) < v.fallback_share
    out = []
    for i in range(n):
        common: dict[str, Any] = {
            "worker": 0,
            "seq": i,
            "kind": "chat",
            "tenant": "t",
            "prompt_id": "p",
            "repeated": False,
            "intended_s": None,
            "sent_s": float(sent[i]),
        }
        if err[i]:
            out.append(Sample(**common, e2e_ms=float(ttft[i]), status=500, error="http"))
            continue
        g = gaps[i].tolist()
        out.append(
            Sample(
                **common,
                e2e_ms=float(ttft[i]) + sum(g),
                ttft_ms=float(ttft[i]),
                token_gaps_ms=g,
                output_tokens=GAPS + 1,
                status=200,
                finish_reason="stop",
                x_served_by="fallback" if fallback[i] else None,
            )
        )
    return out


def trial(case: Case, i: int) -> Outcome:
    """One canary step: looks on a growing window until one does not hold."""
    rng = np.random.default_rng([case.seed, i])
    n_cand = round(case.per_look * case.share)
    n_base = case.per_look - n_cand
    k_max = case.analysis.max_looks
    rate = case.rate_rps
    base = draw(n_base * k_max, case.base, case.sigma, rng, rate and rate * (1 - case.share))
    cand = draw(n_cand * k_max, case.cand, case.sigma, rng, rate and rate * case.share)
    every = case.analysis.look_every_s
    for k in range(1, k_max + 1):
        lk = look_at_step(
            case.share,
            k,
            k * every,
            base[: k * n_base],
            cand[: k * n_cand],
            case.analysis,
            i * 64 + k,
        )
        if lk.decision == "hold":
            continue
        worse = tuple(f.name for f in lk.figures if f.verdict == "worse")
        undecided = tuple(f.name for f in lk.figures if f.verdict == "undecided")
        return Outcome(lk.decision, k, bool(worse), worse or undecided)
    raise AssertionError("the last look never holds")


def _trials(case: Case, start: int, stop: int) -> list[Outcome]:
    rollout_verdict.CLUSTER_S = case.cluster_s  # this process's analysis, for this case
    return [trial(case, i) for i in range(start, stop)]


@dataclass(frozen=True)
class Tally:
    trials: int
    promote: float
    abort_worse: float
    abort_bound: float
    mean_look: float
    blocking: str

    @property
    def abort(self) -> float:
        return self.abort_worse + self.abort_bound


def run_cases(
    cases: Sequence[Case], trials: int, pool: ProcessPoolExecutor | None
) -> Iterator[Tally]:
    """Each case's tally, in order; every case's trials are queued at once (no core idles
    between cases)."""
    step = max(1, trials // 8)
    chunks = [[(c, i, min(i + step, trials)) for i in range(0, trials, step)] for c in cases]
    if pool is None:
        for per_case in chunks:
            yield tally([o for job in per_case for o in _trials(*job)], trials)
        return
    futures = [[pool.submit(_trials, *job) for job in per_case] for per_case in chunks]
    for queued in futures:
        yield tally([o for f in queued for o in f.result()], trials)


def tally(outs: Sequence[Outcome], trials: int) -> Tally:
    blocking: collections.Counter[str] = collections.Counter()
    for o in outs:
        if o.decision == "abort":
            blocking.update(o.blocking)
    top = ", ".join(f"{name} {c}" for name, c in blocking.most_common(3))
    return Tally(
        trials=trials,
        promote=sum(o.decision == "promote" for o in outs) / trials,
        abort_worse=sum(o.decision == "abort" and o.worse for o in outs) / trials,
        abort_bound=sum(o.decision == "abort" and not o.worse for o in outs) / trials,
        mean_look=sum(o.look for o in outs) / trials,
        blocking=top or "-",
    )


def row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def fewest_for_rates(analysis: Analysis) -> dict[str, float]:
    """Per look: the fewest candidate requests (all looks so far) at which a rate with no event
    in either version shows no worse than its margin (the baseline's count does not matter: at
    0 events its interval has no low side)."""
    plan = SequentialPlan(alpha=analysis.alpha, max_looks=analysis.max_looks)
    margin = min(analysis.margins.error_rate_pp, analysis.margins.fallback_share_pp)

    def shown(n: int, alpha: float) -> bool:
        high = newcombe_interval(Count(0, 10 * n), Count(0, n), level=1 - 2 * alpha)[1]
        return 100 * high <= margin

    print(
        f"\n0. a rate with no event in either version (margin +{margin:g} pp): the fewest "
        "candidate requests, all looks so far, at which it shows no worse"
    )
    head = ["look", "alpha (one-sided)", "fewest candidate requests"]
    print(row(head))
    print("|" + "---|" * len(head))
    figures: dict[str, float] = {}
    for k in range(1, analysis.max_looks + 1):
        alpha = plan.alpha_at(k)
        lo, hi = 1, 10_000_000
        while lo < hi:  # bisection: the bound falls as n grows
            mid = (lo + hi) // 2
            lo, hi = (lo, mid) if shown(mid, alpha) else (mid + 1, hi)
        print(row([str(k), f"{alpha:.2g}", f"{lo:,}"]))
        figures[f"zero_rate_fewest_cand_look{k}"] = lo
    return figures


def false_aborts(
    args: argparse.Namespace, analysis: Analysis, pool: ProcessPoolExecutor | None
) -> dict[str, float]:
    shares = [float(x) for x in args.shares.split(",")]
    sizes = [int(x) for x in args.per_look.split(",")]
    same = Version(error_rate=args.error_rate, fallback_share=args.fallback_share)
    t0 = time.monotonic()
    print(
        f"\n1. same distributions: {args.trials} trials each; sigma {args.sigma}; error rate "
        f"{args.error_rate:.1%}, fallback share {args.fallback_share:.1%} in both; "
        f"{analysis.max_looks} looks, alpha {analysis.alpha} per figure, "
        f"{analysis.resamples} resamples"
    )
    head = [
        "candidate share",
        "per look (cand)",
        "promote",
        "abort: shown worse",
        "abort: undecided at bound",
        "mean deciding look",
        "figures behind the aborts (trials)",
    ]
    print(row(head))
    print("|" + "---|" * len(head))
    figures: dict[str, float] = {}
    grid = [(share, n) for share in shares for n in sizes]
    cases = [Case(share, n, same, same, analysis, args.sigma, seed=1) for share, n in grid]
    for (share, n), t in zip(grid, run_cases(cases, args.trials, pool), strict=True):
        cells = [f"{share:.0%}", f"{n} ({round(n * share)})", f"{t.promote:.0%}"]
        cells += [f"{t.abort_worse:.0%}", f"{t.abort_bound:.0%}", f"{t.mean_look:.1f}"]
        cells.append(t.blocking)
        print(row(cells), flush=True)
        figures[f"same_share{share:g}_n{n}_abort"] = round(t.abort, 3)
        figures[f"same_share{share:g}_n{n}_mean_look"] = round(t.mean_look, 2)
    print(f"({time.monotonic() - t0:.0f} s)")
    return figures


def wrong_promotes(
    args: argparse.Namespace, analysis: Analysis, pool: ProcessPoolExecutor | None
) -> dict[str, float]:
    m = analysis.margins
    base = Version(error_rate=args.error_rate, fallback_share=args.fallback_share)
    fb = args.fallback_share
    cases = [
        ("latency_at_margin", f"every latency +{m.ttft_p50:.0%} (at the margin)", "promote",
         Version(slow=m.ttft_p50, error_rate=args.error_rate, fallback_share=fb)),
        ("latency_plus20", "every latency +20%", "abort",
         Version(slow=0.20, error_rate=args.error_rate, fallback_share=fb)),
        ("fallback_at_margin", f"fallback share +{m.fallback_share_pp:g} pp (at the margin)",
         "promote",
         Version(error_rate=args.error_rate, fallback_share=fb + m.fallback_share_pp / 100)),
        ("fallback_plus3pp", "fallback share +3 pp", "abort",
         Version(error_rate=args.error_rate, fallback_share=fb + 0.03)),
    ]  # fmt: skip
    t0 = time.monotonic()
    print(
        f"\n2. worse candidates: {args.trials} trials each; share {args.share:.0%}, "
        f"{args.wrong_per_look} requests per look; baseline as in 1; promote should be "
        f"<= alpha ({analysis.alpha}) at a margin"
    )
    head = [
        "candidate",
        "promote",
        "abort: shown worse",
        "abort: undecided at bound",
        "mean deciding look",
        "figures behind the aborts (trials)",
    ]
    print(row(head))
    print("|" + "---|" * len(head))
    figures: dict[str, float] = {}
    runs = [
        Case(args.share, args.wrong_per_look, base, c[3], analysis, args.sigma, 2) for c in cases
    ]
    for (key, label, want, _), t in zip(cases, run_cases(runs, args.trials, pool), strict=True):
        cells = [label, f"{t.promote:.0%}", f"{t.abort_worse:.0%}", f"{t.abort_bound:.0%}"]
        cells += [f"{t.mean_look:.1f}", t.blocking]
        print(row(cells), flush=True)
        figures[f"{key}_{want}"] = round(t.promote if want == "promote" else t.abort, 3)
        if want == "abort":
            figures[f"{key}_abort_worse"] = round(t.abort_worse, 3)
    print(f"({time.monotonic() - t0:.0f} s)")
    return figures


def stalls(
    args: argparse.Namespace, analysis: Analysis, pool: ProcessPoolExecutor | None
) -> dict[str, float]:
    rate, share = args.stall_rate_rps, 0.5
    per_look = round(rate * analysis.look_every_s)
    shares = [float(x) for x in args.stall_share.split(",")]
    t0 = time.monotonic()
    print(
        f"\n3. identical versions with stalls: {args.trials} trials each; {rate:g} requests/s, "
        f"candidate share {share:.0%}, a look every {analysis.look_every_s:g} s ({per_look} "
        f"requests); each version stalled in a share of its seconds (latencies x"
        f"{args.stall_factor:g} there), independently of the other"
    )
    head = ["stalled seconds", "resampled by", "promote", "abort: shown worse"]
    head += ["abort: undecided at bound", "mean deciding look", "figures behind the aborts"]
    print(row(head))
    print("|" + "---|" * len(head))
    grid = [(p, by) for p in shares for by in ("second", "request")]
    cases = [
        Case(
            share,
            per_look,
            v := Version(stall_share=p, stall_factor=args.stall_factor),
            v,
            analysis,
            args.sigma,
            seed=3,
            rate_rps=rate,
            cluster_s=rollout_verdict.CLUSTER_S if by == "second" else 1e-9,
        )
        for p, by in grid
    ]
    figures: dict[str, float] = {}
    for (p, by), t in zip(grid, run_cases(cases, args.trials, pool), strict=True):
        cells = [f"{p:.0%}", by, f"{t.promote:.0%}", f"{t.abort_worse:.0%}"]
        cells += [f"{t.abort_bound:.0%}", f"{t.mean_look:.1f}", t.blocking]
        print(row(cells), flush=True)
        figures[f"stalls{p:g}_by_{by}_abort_worse"] = round(t.abort_worse, 3)
        figures[f"stalls{p:g}_by_{by}_abort"] = round(t.abort, 3)
    print(f"({time.monotonic() - t0:.0f} s)")
    return figures


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trials", type=int, default=100)
    ap.add_argument("--sigma", type=float, default=0.25, help="log-normal spread of latencies")
    ap.add_argument("--max-looks", type=int, default=Analysis().max_looks)
    ap.add_argument("--alpha", type=float, default=Analysis().alpha)
    ap.add_argument("--resamples", type=int, default=300, help="bootstrap resamples per figure")
    ap.add_argument("--shares", default="0.05,0.2,0.5", help="candidate shares (table 1)")
    ap.add_argument("--per-look", default="300,600,1200", help="requests per look (table 1)")
    ap.add_argument("--share", type=float, default=0.2, help="candidate share (table 2)")
    ap.add_argument("--wrong-per-look", type=int, default=600, help="requests per look (table 2)")
    ap.add_argument("--error-rate", type=float, default=0.0, help="a fraction, both versions")
    ap.add_argument("--fallback-share", type=float, default=0.0, help="a fraction, both versions")
    ap.add_argument("--stall-rate-rps", type=float, default=40.0, help="requests/s (table 3)")
    ap.add_argument(
        "--stall-share", default="0,0.1,0.2", help="shares of stalled seconds (table 3)"
    )
    ap.add_argument("--stall-factor", type=float, default=3.0, help="latency x (table 3)")
    ap.add_argument("--only", choices=("same", "worse", "stalls"), help="run one table")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="processes")
    ap.add_argument("--no-record", action="store_true", help="do not append to figures.jsonl")
    args = ap.parse_args()
    analysis = Analysis(
        max_looks=args.max_looks, alpha=args.alpha, resamples=args.resamples, margins=Margins()
    )
    t0 = time.monotonic()
    figures: dict[str, float] = {}
    pool = ProcessPoolExecutor(args.jobs) if args.jobs > 1 else None
    try:
        figures |= fewest_for_rates(analysis)
        if args.only in (None, "same"):
            figures |= false_aborts(args, analysis, pool)
        if args.only in (None, "worse"):
            figures |= wrong_promotes(args, analysis, pool)
        if args.only in (None, "stalls"):
            figures |= stalls(args, analysis, pool)
    finally:
        if pool:
            pool.shutdown()
    elapsed = time.monotonic() - t0
    print(f"\nelapsed {elapsed:.0f} s ({args.jobs} processes)")
    if not args.no_record:
        keep = ["trials", "sigma", "max_looks", "alpha", "resamples", "shares", "per_look"]
        keep += ["share", "wrong_per_look", "error_rate", "fallback_share", "only"]
        keep += ["stall_rate_rps", "stall_share", "stall_factor"]
        record("bench_rollout_rates", {k: getattr(args, k) for k in keep}, figures)


if __name__ == "__main__":
    main()
