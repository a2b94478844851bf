"""How often `harness compare` labels two runs wrongly, and how many requests a run needs to
detect a slowdown: repeated trials on synthetic TTFT samples (not a test; prints a table).

Each trial draws two runs of n requests from one log-normal distribution (median 45 ms, spread
sigma), and a third with every value times (1 + slowdown); the false-alarm rate is how often
the first pair is labelled `regressed`, the `same` rate how often it is proven the same within
the minimum effect, and the detection rate how often the slowed run is labelled `regressed`.

    .venv/bin/python benchmarks/bench_compare_rates.py [--trials 200] [--sigma 0.25]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from harness.compare.stats import compare_values


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=200)
    ap.add_argument("--sigma", type=float, default=0.25)
    ap.add_argument("--min-effect", type=float, default=0.10)
    ap.add_argument("--sizes", default="50,100,200,400,800")
    ap.add_argument("--slowdowns", default="0.10,0.15,0.20,0.30")
    args = ap.parse_args()
    sizes = [int(x) for x in args.sizes.split(",")]
    slowdowns = [float(x) for x in args.slowdowns.split(",")]
    rng = np.random.default_rng(12345)
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
            label = compare_values("ttft_ms", a, b, min_effect=args.min_effect, resamples=1000,
                                   seed=i).label  # fmt: skip
            fa += label == "regressed"
            same += label == "same"
            for s in slowdowns:
                slow = compare_values("ttft_ms", a, b * (1 + s), min_effect=args.min_effect,
                                      resamples=1000, seed=i).label  # fmt: skip
                detected[s] += slow == "regressed"
        cells = [str(n), f"{fa / args.trials:.1%}", f"{same / args.trials:.1%}"]
        cells += [f"{detected[s] / args.trials:.1%}" for s in slowdowns]
        print("| " + " | ".join(cells) + " |", flush=True)
    print(f"({time.monotonic() - t0:.0f} s)")


if __name__ == "__main__":
    main()
