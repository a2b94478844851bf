"""Benchmark (not a test): what nginx + one gateway replica add to a streamed request.

    .venv/bin/python benchmarks/bench_gateway.py [--rounds 4] [--requests 40] [--levels 1,16,64]

Brings up the simulated stack (llm-d-inference-sim, fixed TTFT; tests/fixtures/sim-stack.yaml)
with one primary model server, one gateway replica (`--replicas 2`: the reference stack's two,
behind the same nginx) and the rate limit lifted (still checked in Redis on every request), then
sends the same streamed chat completions straight to one model server (A) and through nginx and
the gateway (B), alternating A/B and B/A round by round, at each concurrency level (closed
loop; the workers' first sends spread over --spread-ms).
Then bursts of --simultaneous requests sent in the same moment (spread 0).
`--no-pii` turns the gateway's PII filter off (it holds a word back until the next delta).
It prints TTFT and end-to-end percentiles of both paths and what B adds, the gateway's own
`X-Gateway-Overhead-Ms` beside that, the cache-hit path through nginx, and the gateway's
frontier: the highest open-loop request rate at which B's added TTFT p99 stays under 1, 5 and
10 ms.

The generator checks itself: a ticker measures how late its event loop wakes (lag) in every
phase; a phase whose lag p99 exceeds --max-lag-ms is flagged, since its numbers would describe
the generator. By default the gateway dials the model servers and Redis directly
(`toxiproxy.front: []`), so B - A is nginx plus the gateway; `--toxiproxy` keeps the reference
stack's proxies on those hops. It asserts nothing. Each run appends its figures (added TTFT p50
and p95 per level and burst, the frontier) to benchmarks/figures.jsonl (`--no-record`: not).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import re
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from figures import record  # noqa: E402

from harness.measure.stats import percentile as exact_percentile  # noqa: E402
from harness.spec.loader import load_yaml_model  # noqa: E402
from harness.spec.stack import StackSpec  # noqa: E402
from harness.stack.orchestrator import new_run_dir, start_stack  # noqa: E402

SIM_STACK = ROOT / "tests" / "fixtures" / "sim-stack.yaml"
# Longer than routing.short_prompt_chars, so a busy replica still routes to the primary pool.
PROMPT = "Summarise the following notes in one line. " + "The deploy gate measures latency. " * 16
QUANTILES = (50, 95, 99)
TEXT = re.compile(rb'"content":"[^"]')  # an SSE event carrying text (several may share a read)


@dataclass
class Sample:
    ttft_s: float
    e2e_s: float
    overhead_ms: float | None  # X-Gateway-Overhead-Ms, when the gateway sent it
    ok: bool


@dataclass
class Phase:
    samples: list[Sample] = field(default_factory=list)
    ranks: list[int] = field(default_factory=list)  # bursts: each sample's place in the order sent
    lags_s: list[float] = field(default_factory=list)
    send_lags_s: list[float] = field(default_factory=list)

    def q(self, attr: str, p: float) -> float:
        xs = [getattr(s, attr) for s in self.samples if s.ok]
        return percentile(xs, p) if xs else math.nan


def percentile(xs: list[float], p: float) -> float:
    value = exact_percentile(xs, p)
    return math.nan if value is None else value


def stack_spec(toxiproxy: bool, pii: bool, replicas: int = 1) -> StackSpec:
    spec = load_yaml_model(StackSpec, SIM_STACK)
    data = spec.model_dump()
    data["name"] = "bench-gateway"
    data["gateway"]["replicas"] = replicas
    data["primary"]["replicas"] = 1  # the direct path and the gateway reach the same server
    data["gateway"]["settings"]["rate_limit"]["requests_per_minute"] = 10**9
    data["gateway"]["settings"]["pii"]["enabled"] = pii
    if not toxiproxy:
        data["toxiproxy"]["front"] = []
    return StackSpec.model_validate(data)


def body(max_tokens: int, temperature: float, n: int) -> dict[str, object]:
    return {
        "model": "sim-model",
        "messages": [{"role": "user", "content": f"{n % 7} {PROMPT}"}],
        "stream": True,
        "max_tokens": max_tokens,
        "temperature": temperature,
        "ignore_eos": True,  # every answer max_tokens long: comparable end-to-end times
    }


async def one_request(
    client: aiohttp.ClientSession, url: str, key: str, payload: dict[str, object], t0: float
) -> Sample:
    """One streamed completion; TTFT = first SSE event carrying text, from t0."""
    ttft = math.nan
    ok = False
    overhead = None
    headers = {"Authorization": f"Bearer {key}"}
    try:
        async with client.post(url, json=payload, headers=headers) as resp:
            overhead = resp.headers.get("x-gateway-overhead-ms")
            async for chunk in resp.content.iter_any():
                if math.isnan(ttft) and TEXT.search(chunk):
                    ttft = time.perf_counter() - t0
            ok = resp.status == 200 and not math.isnan(ttft)
    except (aiohttp.ClientError, TimeoutError):
        ok = False
    e2e = time.perf_counter() - t0
    return Sample(ttft, e2e, float(overhead) if overhead else None, ok)


async def ticker(lags: list[float], stop: asyncio.Event, period_s: float = 0.002) -> None:
    """How late the event loop wakes: the generator's own lag."""
    while not stop.is_set():
        t = time.perf_counter()
        await asyncio.sleep(period_s)
        lags.append(time.perf_counter() - t - period_s)


async def with_ticker(phase: Phase, work: Callable[[], Awaitable[None]]) -> None:
    stop = asyncio.Event()
    tick = asyncio.create_task(ticker(phase.lags_s, stop))
    try:
        await work()
    finally:
        stop.set()
        await tick


async def closed_loop(
    client: aiohttp.ClientSession,
    url: str,
    key: str,
    conc: int,
    n: int,
    args: argparse.Namespace,
    phase: Phase,
) -> None:
    counter = iter(range(n))

    async def worker(k: int) -> None:
        # Spread the workers' first sends over one request's duration: `conc` requests in
        # flight, not `conc` arriving at once every round (--spread-ms 0 for lockstep bursts).
        await asyncio.sleep(args.spread_ms / 1000 * k / conc)
        for i in counter:
            payload = body(args.max_tokens, 0.7, i)
            phase.samples.append(await one_request(client, url, key, payload, time.perf_counter()))

    async def run() -> None:
        await asyncio.gather(*(worker(k) for k in range(conc)))

    await with_ticker(phase, run)


async def bursts(
    client: aiohttp.ClientSession,
    url: str,
    key: str,
    size: int,
    n: int,
    args: argparse.Namespace,
    phase: Phase,
) -> None:
    """`size` requests sent in the same moment, the next burst once all have ended: the worst
    arrival pattern for one event loop (every request's work before its first byte at once)."""

    async def run() -> None:
        for b in range(max(1, n // size)):
            t0 = time.perf_counter()
            payloads = [body(args.max_tokens, 0.7, b * size + k) for k in range(size)]
            phase.samples += await asyncio.gather(
                *(one_request(client, url, key, payload, t0) for payload in payloads)
            )
            phase.ranks += range(size)

    await with_ticker(phase, run)


async def open_loop(
    client: aiohttp.ClientSession,
    url: str,
    key: str,
    rate: float,
    duration_s: float,
    args: argparse.Namespace,
    phase: Phase,
) -> None:
    async def run() -> None:
        tasks = []
        start = time.perf_counter() + 0.01
        for i in range(int(rate * duration_s)):
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            phase.send_lags_s.append(max(0.0, time.perf_counter() - due))
            # Latency from the intended send time: a late send cannot hide a stall.
            tasks.append(
                asyncio.create_task(
                    one_request(client, url, key, body(args.max_tokens, 0.7, i), due)
                )
            )
        phase.samples += await asyncio.gather(*tasks)

    await with_ticker(phase, run)


def ms(x: float) -> str:
    return "  n/a" if math.isnan(x) else f"{x * 1000:6.2f}"


def lag_note(phase: Phase, max_lag_ms: float) -> str:
    lag = percentile(phase.lags_s, 99) * 1000 if phase.lags_s else math.nan
    bad = lag > max_lag_ms or any(not s.ok for s in phase.samples)
    errs = sum(not s.ok for s in phase.samples)
    return f"lag p99 {lag:5.2f} ms" + (f", {errs} failed" if errs else "") + ("  !" if bad else "")


async def pii_hold(
    client: aiohttp.ClientSession, gateways: list[str]
) -> tuple[float, float, float]:
    """(streams, streams whose first text waited in the PII filter, seconds waited in all) so far,
    from the gateways' llm_pii_filter_hold_seconds: the filter's wait, apart from its CPU."""
    found: dict[str, float] = {}
    for gateway in gateways:
        async with client.get(gateway + "/metrics") as resp:
            text = await resp.text()
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name.startswith("llm_pii_filter_hold_seconds"):
                    key = sample.name + sample.labels.get("le", "")
                    found[key] = found.get(key, 0.0) + float(sample.value)
    count = found.get("llm_pii_filter_hold_seconds_count", 0.0)
    at_once = found.get("llm_pii_filter_hold_seconds_bucket0.0005", 0.0)
    return count, count - at_once, found.get("llm_pii_filter_hold_seconds_sum", 0.0)


def hold_note(before: tuple[float, float, float], after: tuple[float, float, float]) -> str:
    n, held, waited = (y - x for x, y in zip(before, after, strict=True))
    if not n:
        return "  PII filter: off"
    mean = f", {waited / held * 1000:.2f} ms each on average" if held else ""
    return f"  PII filter held the first text of {held:.0f} of {n:.0f} streams{mean}"


def report_level(name: str, a: Phase, b: Phase, args: argparse.Namespace) -> dict[str, float]:
    """Print the level's table; its added TTFT p50 and p95 (ms), for the figures file."""
    print(f"\n{name}: {len(a.samples)} direct / {len(b.samples)} via gateway")
    print("                 direct    gateway   added")
    for attr, label in (("ttft_s", "TTFT"), ("e2e_s", "e2e ")):
        for p in QUANTILES:
            da, db = a.q(attr, p), b.q(attr, p)
            print(f"  {label} p{p:<3}      {ms(da)}    {ms(db)}  {ms(db - da)}")
    ov = [s.overhead_ms for s in b.samples if s.ok and s.overhead_ms is not None]
    if ov:
        qs = "  ".join(f"p{p} {percentile(ov, p):.2f}" for p in QUANTILES)
        print(f"  X-Gateway-Overhead-Ms: {qs} ms")
    if b.ranks:
        print(f"  added TTFT p50 by place in the burst (order sent): {by_rank(a, b)}")
    lag_a, lag_b = lag_note(a, args.max_lag_ms), lag_note(b, args.max_lag_ms)
    print(f"  generator: direct {lag_a}; gateway {lag_b}")
    return {
        f"added_ttft_p{p}_ms": round((b.q("ttft_s", p) - a.q("ttft_s", p)) * 1000, 2)
        for p in (50, 95)
    }


def by_rank(a: Phase, b: Phase) -> str:
    """Added TTFT p50 of the 1st, 4th, 8th, 12th and last request of the bursts: a line that
    rises with the place is work queued on one event loop, request after request."""
    size = max(b.ranks) + 1

    def p50(phase: Phase, rank: int) -> float:
        pairs = zip(phase.samples, phase.ranks, strict=True)
        return percentile([s.ttft_s for s, r in pairs if r == rank and s.ok], 50)

    places = sorted({0, size // 4 - 1, size // 2 - 1, 3 * size // 4 - 1, size - 1} - {-1})
    return ", ".join(f"#{r + 1} {ms(p50(b, r) - p50(a, r)).strip()}" for r in places)


Runner = Callable[
    [aiohttp.ClientSession, str, str, int, int, argparse.Namespace, Phase], Awaitable[None]
]


async def alternating(
    client: aiohttp.ClientSession,
    direct: str,
    via: str,
    key: str,
    level: int,
    run: Runner,
    args: argparse.Namespace,
) -> tuple[Phase, Phase]:
    """--rounds rounds of `run` at `level` on each path, A/B then B/A: (direct, via gateway)."""
    a, b = Phase(), Phase()
    n = max(args.requests, level * 2)
    for r in range(args.rounds):
        order = [(direct, a), (via, b)] if r % 2 == 0 else [(via, b), (direct, a)]
        for url, phase in order:
            await run(client, url, key, level, n, args, phase)
    return a, b


async def main_async(args: argparse.Namespace) -> None:
    spec = stack_spec(args.toxiproxy, not args.no_pii, args.replicas)
    run_dir = new_run_dir("bench-gateway")
    print(f"bench-gateway: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start")
    figures: dict[str, float] = {}
    with start_stack(spec, run_dir=run_dir, wait_for_scrapes=False) as stack:
        ep = stack.endpoints
        direct = ep.model_pools["primary"][0] + "/v1/chat/completions"
        via = ep.nginx + "/v1/chat/completions"
        print(
            f"direct: {direct}  via: {via}  toxiproxy hops: {args.toxiproxy}"
            f"  PII filter: {not args.no_pii}  gateway replicas: {args.replicas}"
        )
        connector = aiohttp.TCPConnector(limit=0)
        timeout = aiohttp.ClientTimeout(total=30.0)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as client:
            for path in (direct, via):  # warm both paths and their keep-alive connections
                await closed_loop(client, path, ep.api_key, 8, 32, args, Phase())
            for conc in args.levels:
                hold_before = await pii_hold(client, ep.gateways)
                a, b = await alternating(client, direct, via, ep.api_key, conc, closed_loop, args)
                level = report_level(f"concurrency {conc}", a, b, args)
                figures.update({f"c{conc}_{k}": v for k, v in level.items()})
                print(hold_note(hold_before, await pii_hold(client, ep.gateways)))
            if size := args.simultaneous:
                a, b = await alternating(client, direct, via, ep.api_key, size, bursts, args)
                level = report_level(f"{size} simultaneous (bursts, spread 0)", a, b, args)
                figures.update({f"burst{size}_{k}": v for k, v in level.items()})
            await cache_hits(client, via, ep.api_key, args)
            figures.update(await frontier(client, direct, via, ep.api_key, args))
    print(f"\nload average {os.getloadavg()[0]:.2f} at the end; logs in {run_dir}")
    if not args.no_record:
        keep = ("levels", "simultaneous", "rounds", "requests", "max_tokens", "toxiproxy", "no_pii")
        keep += ("rates", "replicas")
        record("bench_gateway", {k: getattr(args, k) for k in keep}, figures)


async def cache_hits(
    client: aiohttp.ClientSession, via: str, key: str, args: argparse.Namespace
) -> None:
    payload = body(args.max_tokens, 0.0, 0)
    first = await one_request(client, via, key, payload, time.perf_counter())
    phase = Phase()

    async def run() -> None:
        for _ in range(args.cache_requests):
            phase.samples.append(await one_request(client, via, key, payload, time.perf_counter()))

    await with_ticker(phase, run)
    ov = [s.overhead_ms for s in phase.samples if s.overhead_ms is not None]
    print(
        f"\ncache hit via nginx ({len(phase.samples)} streamed, one at a time; miss first took"
        f" {first.e2e_s * 1000:.1f} ms): e2e p50 {ms(phase.q('e2e_s', 50))} p95"
        f" {ms(phase.q('e2e_s', 95))} ms"
        + (f"; X-Gateway-Overhead-Ms p50 {percentile(ov, 50):.2f}" if ov else "")
        + f"; {lag_note(phase, args.max_lag_ms)}"
    )


async def frontier(
    client: aiohttp.ClientSession, direct: str, via: str, key: str, args: argparse.Namespace
) -> dict[str, float]:
    """The gateway's frontier as gateway benchmarks give it: the highest open-loop rate (for
    the replicas run) at which the added TTFT p99 stays under 1, 5 and 10 ms, each path run at
    each rate in turn, rates rising until the added p99 passes 10 ms or a request fails."""
    print(f"\nopen loop, {args.rate_duration:g} s per path and rate (added = gateway - direct):")
    bounds_ms = (1.0, 5.0, 10.0)
    best = dict.fromkeys(bounds_ms, 0.0)
    for rate in args.rates:
        a, b = Phase(), Phase()
        for url, phase in ((direct, a), (via, b)):
            await open_loop(client, url, key, rate, args.rate_duration, args, phase)
        added = {p: b.q("ttft_s", p) - a.q("ttft_s", p) for p in (50, 99)}
        send_lag = percentile(b.send_lags_s + a.send_lags_s, 99) * 1000
        failed = sum(not s.ok for s in a.samples + b.samples)
        trusted = send_lag <= args.max_lag_ms
        print(
            f"  {rate:6.1f} req/s: TTFT p99 direct {ms(a.q('ttft_s', 99))} gateway"
            f" {ms(b.q('ttft_s', 99))}; added p50 {ms(added[50])} p99 {ms(added[99])} ms;"
            f" send lag p99 {send_lag:.2f} ms"
            + (f"; {failed} failed" if failed else "")
            + ("" if trusted else "  (generator behind: not counted)")
            + ("" if added[99] > -0.001 else "  (direct path slower: not counted)")
        )
        if failed or not added[99] < 0.010:
            break
        # A direct path slower than the gateway's by more than a millisecond is noise on that
        # side (the same server serves both): the rate says nothing about the bounds.
        trusted = trusted and added[99] > -0.001
        if trusted:
            for bound in bounds_ms:
                if added[99] < bound / 1000:
                    best[bound] = rate
    top = " (the highest tried: --rates for more)"
    for bound in bounds_ms:
        print(
            f"  highest rate with added TTFT p99 < {bound:g} ms: {best[bound]:g} req/s"
            + (top if best[bound] == args.rates[-1] else "")
        )
    return {f"frontier_p99_under_{bound:g}ms_rps": best[bound] for bound in bounds_ms}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--levels", default="1,16,64", type=lambda s: [int(x) for x in s.split(",")])
    ap.add_argument("--rounds", type=int, default=4, help="A/B rounds per level (alternating)")
    ap.add_argument("--requests", type=int, default=40, help="requests per path per round")
    ap.add_argument("--max-tokens", type=int, default=16)
    ap.add_argument(
        "--spread-ms",
        type=float,
        default=110.0,
        help="closed loop: spread the workers' first requests over this window (0: all at once)",
    )
    ap.add_argument(
        "--simultaneous",
        type=int,
        default=16,
        help="also send bursts of this many requests at the same moment (0: not)",
    )
    ap.add_argument("--cache-requests", type=int, default=200)
    ap.add_argument(
        "--rates",
        default="25,50,100,150,200,250,300,400,500,600,800",
        type=lambda s: [float(x) for x in s.split(",")],
    )
    ap.add_argument("--rate-duration", type=float, default=5.0)
    ap.add_argument("--max-lag-ms", type=float, default=5.0)
    ap.add_argument("--toxiproxy", action="store_true", help="keep Toxiproxy on the hops")
    ap.add_argument(
        "--no-pii",
        action="store_true",
        help="PII filter off: no word held back until the next delta shows where it ends",
    )
    ap.add_argument(
        "--replicas",
        type=int,
        default=1,
        help="gateway replicas behind nginx (1: what one replica adds; 2: the reference stack's)",
    )
    ap.add_argument("--no-record", action="store_true", help="do not append to figures.jsonl")
    args = ap.parse_args()
    try:
        import uvloop  # the generator's loop must not be the slow part

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
