"""Benchmark (not a test): does the gateway leak? One gateway replica under steady load for a
long while, its resident memory against the requests it has served.

    .venv/bin/python benchmarks/bench_gateway_soak.py [--minutes 10] [--rate 60] [--warmup-s 60]

Brings up the simulated stack as `bench_gateway.py` does (one gateway replica, one primary, the
rate limit lifted but still checked in Redis on every request, PII filter on) and sends streamed
chat completions through nginx and the gateway at a constant open-loop rate (the harness's own
Locust load), half of them repeating a few prompts so the response cache both hits and stores.
Every --every-s it reads the gateway's resident memory (/proc, the process and its children) and
the requests it has answered (its `llm_requests_total`). After the warm-up, the slope of memory
against requests (least squares, scipy.stats.linregress) is the leak rate: MB per 10,000 requests,
with its 95% interval. A flat line (the interval around 0) is what a gateway that holds no state
per request shows; caches with a bound grow, then level off (the last minutes' slope says so).
It asserts nothing; it appends its figures to benchmarks/figures.jsonl (`--no-record`: not).
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench_gateway import stack_spec  # noqa: E402
from figures import record  # noqa: E402

from harness.clients.http import http_get  # noqa: E402
from harness.load.runner import run_load  # noqa: E402
from harness.observe.resources import rss_bytes  # noqa: E402
from harness.spec.load import LoadSpec, OpenLoop, Workload  # noqa: E402
from harness.stack.orchestrator import new_run_dir, start_stack  # noqa: E402
from harness.stack.process import descendants  # noqa: E402
from harness.stack.target import from_stack  # noqa: E402


def served(gateway: str) -> float:
    """Requests the gateway has answered, every status (its own counter)."""
    total = 0.0
    for line in http_get(f"{gateway}/metrics", timeout=5.0).text.splitlines():
        if line.startswith("llm_requests_total{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def rss_mb(pid: int) -> float:
    return sum(rss_bytes(p) or 0 for p in {pid, *descendants(pid)}) / 2**20


def slope(points: list[tuple[float, float]]) -> tuple[float, float, float]:
    """MB per 10,000 requests with its 95% interval, from (requests, MB) points."""
    from scipy import stats

    xs, ys = [p[0] for p in points], [p[1] for p in points]
    fit = stats.linregress(xs, ys)
    t = float(stats.t.ppf(0.975, len(points) - 2))
    per = 10_000.0
    return fit.slope * per, (fit.slope - t * fit.stderr) * per, (fit.slope + t * fit.stderr) * per


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--rate", type=float, default=60.0, help="requests/s, open loop")
    ap.add_argument("--warmup-s", type=float, default=60.0)
    ap.add_argument("--every-s", type=float, default=10.0)
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args()
    if args.minutes * 60 <= args.warmup_s + 3 * args.every_s:
        ap.error("--minutes must leave at least three readings after the warm-up")
    duration = args.minutes * 60
    load = LoadSpec(
        name="soak",
        workload=Workload(
            prompt_words=24, max_tokens=16, temperature=0.0, repeated_share=0.5, repeated_pool=16
        ),
        load=OpenLoop(rate_rps=args.rate, arrival="constant", max_send_lag_ms=1000),
        duration_s=duration,
        drain_timeout_s=10,
    )
    run_dir = new_run_dir("bench-soak")
    with start_stack(stack_spec(toxiproxy=False, pii=True), run_dir=run_dir / "stack") as stack:
        gateway = stack.endpoints.gateways[0]
        pid = stack.services["gateway-0"].pid
        assert pid is not None, "the soak reads a local process's memory"
        runner = threading.Thread(
            target=run_load,
            args=(load, from_stack(stack), run_dir / "load"),
            kwargs={"progress": lambda _line: None, "default_checks": False},
            daemon=True,
        )
        print(f"soak: {args.rate:g} requests/s for {args.minutes:g} min through nginx + 1 gateway")
        print("| minute | requests served | gateway RSS (MB) |")
        print("|---|---|---|")
        t0 = time.monotonic()
        runner.start()
        readings: list[tuple[float, float, float]] = []  # (seconds, requests, MB)
        while runner.is_alive() and time.monotonic() - t0 < duration + 30:
            t = time.monotonic() - t0
            readings.append((t, served(gateway), rss_mb(pid)))
            if len(readings) == 1 or int(t // 60) != int(readings[-2][0] // 60):
                print(f"| {t / 60:.1f} | {readings[-1][1]:,.0f} | {readings[-1][2]:.1f} |")
            time.sleep(args.every_s)
        runner.join()
    after = [(req, mb) for t, req, mb in readings if t >= args.warmup_s]
    tail = after[len(after) // 2 :]
    whole, low, high = slope(after)
    last, last_low, last_high = slope(tail) if len(tail) >= 3 else (float("nan"),) * 3
    first_mb, last_mb = after[0][1], after[-1][1]
    print(
        f"\nafter the {args.warmup_s:g} s warm-up: {after[-1][0] - after[0][0]:,.0f} requests, "
        f"RSS {first_mb:.1f} -> {last_mb:.1f} MB"
    )
    print(f"slope: {whole:+.3f} MB per 10,000 requests (95% CI {low:+.3f} .. {high:+.3f})")
    print(
        f"last half: {last:+.3f} MB per 10,000 requests "
        f"(95% CI {last_low:+.3f} .. {last_high:+.3f})"
    )
    if not args.no_record:
        record(
            "bench_gateway_soak",
            {k: getattr(args, k) for k in ("minutes", "rate", "warmup_s", "every_s")},
            {
                "requests": round(after[-1][0] - after[0][0]),
                "rss_mb_start": round(first_mb, 1),
                "rss_mb_end": round(last_mb, 1),
                "mb_per_10k_requests": round(whole, 4),
                "mb_per_10k_requests_ci": [round(low, 4), round(high, 4)],
                "last_half_mb_per_10k_requests": round(last, 4),
            },
        )


if __name__ == "__main__":
    main()
