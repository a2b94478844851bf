"""How often `harness compare` labels two runs wrongly, and how many requests a run needs to
detect a slowdown or more errors: repeated trials on synthetic runs (not a test; prints tables).

Latency: each trial draws two runs of n requests from one log-normal distribution (median 45 ms,
spread sigma), and a third with every value times (1 + slowdown); the false-alarm rate is how
often the first pair is labelled `regressed`, the `same` rate how often it is proven the same
within the minimum effect, and the detection rate how often the slowed run is labelled
`regressed`.

Rates (the error rate; the fallback and degraded shares are judged the same way): each trial
draws two runs' error counts from one true rate, and a third from the rate plus a shift in
percentage points; the same three figures for the rate's label.

    .venv/bin/python benchmarks/bench_compare_rates.py [--trials 200] [--sigma 0.25]
    .venv/bin/python benchmarks/bench_compare_rates.py --rates-only [--rate-trials 2000]
"""

from __future__ import annotations

import argparse
import functools
import time

import numpy as np

from harness.compare.stats import compare_values
from harness.verdict.labels import Label
from harness.verdict.rates import Count, compare_rate


def latency_table(args: argparse.Namespace, rng: np.random.Generator) -> None:
    sizes = [int(x) for x in args.sizes.split(",")]
    slowdowns = [float(x) for x in args.slowdowns.split(",")]
    t0 = time.monotonic()
    head = ["n per run", "false alarm", "same"] + [f"detect +{s:.0%}" for s in slowdowns]
    print(f"{args.trials} trials each; sigma {args.sigma}; minimum effect {args.min_effect:.0%}")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for n in sizes:
        fa = same = 0
        detected = dict.fromkeys(slowdowns, 0)
        for i in range(args.trials):
            a = rng.lognormal(np.log(45.0), args.sigma, n)
            b = rng.lognormal(np.log(45.0), args.sigma, n)
            label = compare_values(
                "ttft_ms", a, b, min_effect=args.min_effect, resamples=1000, seed=i
            ).label
            fa += label == "regressed"
            same += label == "same"
            for s in slowdowns:
                slow = compare_values(
                    "ttft_ms", a, b * (1 + s), min_effect=args.min_effect, resamples=1000, seed=i
                ).label
                detected[s] += slow == "regressed"
        cells = [str(n), f"{fa / args.trials:.1%}", f"{same / args.trials:.1%}"]
        cells += [f"{detected[s] / args.trials:.1%}" for s in slowdowns]
        print("| " + " | ".join(cells) + " |", flush=True)
    print(f"({time.monotonic() - t0:.0f} s)")


def rate_table(args: argparse.Namespace, rng: np.random.Generator) -> None:
    sizes = [int(x) for x in args.rate_sizes.split(",")]
    rates = [float(x) for x in args.base_rates.split(",")]
    shift, d = args.rate_shift, args.min_effect_pp

    # Counts repeat across trials: each pair is judged once.
    @functools.cache
    def label(k_a: int, k_b: int, n: int) -> Label:
        return compare_rate("error_rate", Count(k_a, n), Count(k_b, n), min_effect_pp=d).label

    t0 = time.monotonic()
    head = ["n per run", "true rate", "false alarm", "same", f"detect +{100 * shift:g} pp"]
    print(f"\nerror rate: {args.rate_trials} trials each; minimum effect {d:g} pp")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for n in sizes:
        for p in rates:
            a, b = (rng.binomial(n, p, args.rate_trials) for _ in range(2))
            worse = rng.binomial(n, p + shift, args.rate_trials)
            fa = same = detected = 0
            for ka, kb, kw in zip(a.tolist(), b.tolist(), worse.tolist(), strict=True):
                lab = label(ka, kb, n)
                fa += lab == "regressed"
                same += lab == "same"
                detected += label(ka, kw, n) == "regressed"
            cells = [str(n), f"{p:.1%}"] + [
                f"{x / args.rate_trials:.1%}" for x in (fa, same, detected)
            ]
            print("| " + " | ".join(cells) + " |", flush=True)
    print(f"({time.monotonic() - t0:.0f} s)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=200)
    ap.add_argument("--sigma", type=float, default=0.25)
    ap.add_argument("--min-effect", type=float, default=0.10)
    ap.add_argument("--sizes", default="50,100,200,400,800")
    ap.add_argument("--slowdowns", default="0.10,0.15,0.20,0.30")
    ap.add_argument("--rates-only", action="store_true", help="skip the latency table (minutes)")
    ap.add_argument("--rate-trials", type=int, default=2000)
    ap.add_argument("--rate-sizes", default="300,600,1200")
    ap.add_argument("--base-rates", default="0,0.01,0.02,0.05")
    ap.add_argument("--rate-shift", type=float, default=0.03, help="a fraction: 0.03 is +3 pp")
    ap.add_argument("--min-effect-pp", type=float, default=1.0)
    args = ap.parse_args()
    rng = np.random.default_rng(12345)
    if not args.rates_only:
        latency_table(args, rng)
    rate_table(args, rng)


if __name__ == "__main__":
    main()
