"""Benchmark (not a test): the load generator's open-loop ceiling, the highest constant arrival
rate it sends on schedule (send lag p99 <= --max-lag-ms, 10 by default) with no failed request.

    .venv/bin/python benchmarks/bench_open_loop.py [--rates 1000,2000,3000,4000] [--duration 5]

Two targets, each rate tried in turn (5 s each by default) until one misses its schedule:
- a co-located simulator (llm-d-inference-sim: TTFT 5 ms, 8 tokens 1 ms apart), one process,
  as when the serving stack shares the machine with the generator: first with the scheduler
  free to put either on any core, then with a core each (the generator and the harness on the
  first, the simulator on the rest, by CPU affinity), as co-located benchmarks pin their load
  generator and server so neither waits out the other's time slice;
- nginx's canned stream (`bench_llm_user.py`'s), no model server on the same cores, one and two
  processes, so the gain of a second process reads apart from the server's share of the CPU.
Each line gives the rate sent, the send lag p50 and p99, failures, TTFT p95, and where the CPU
went over that rate's run: each generator process's share of one core (near 1.0: that process is
the limit), the server's (the simulator, or nginx's processes), the rest (the harness, Locust's
master, the kernel), and the whole machine's busy cores out of all of them (near all: the
machine is the limit, not the generator), each over the schedule alone. It asserts
nothing, and appends the ceilings to benchmarks/figures.jsonl (`--no-record`: not).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench_llm_user import start_nginx  # noqa: E402
from figures import record  # noqa: E402

from harness.clients.models import Target  # noqa: E402
from harness.clients.poll import poll_until  # noqa: E402
from harness.load import clock  # noqa: E402
from harness.load.runner import run_load  # noqa: E402
from harness.measure.summary import LoadSummary, summarize  # noqa: E402
from harness.observe.resources import TICKS, cpu_ticks  # noqa: E402
from harness.spec.load import LoadSpec, OpenLoop, Workload  # noqa: E402
from harness.stack.ports import free_ports  # noqa: E402
from harness.stack.process import descendants  # noqa: E402
from harness.tools import find_binary  # noqa: E402


def start_simulator(d: Path, cpus: set[int] | None = None) -> tuple[subprocess.Popen[bytes], str]:
    """The simulator, on `cpus` only when given (Go sizes its scheduler to them at start)."""
    port, zmq = free_ports(2)
    argv = [
        str(find_binary("llm-d-inference-sim")),
        *("--model", "sim-model", "--port", str(port), "--mode", "random"),
        *("--time-to-first-token", "5ms", "--inter-token-latency", "1ms"),
        *("--max-num-seqs", "4096", "--max-model-len", "4096", "--seed", "1"),
        # Its KV-event publisher defaults to a fixed port: one of our own instead.
        *("--zmq-endpoint", f"tcp://127.0.0.1:{zmq}"),
    ]
    with (d / "sim.log").open("wb") as log:
        proc = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=None if cpus is None else partial(os.sched_setaffinity, 0, cpus),
        )
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return httpx.get(f"{url}/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return proc.poll() is not None  # dead: stop waiting, fail below

    if not poll_until(up, 30, 0.1) or proc.poll() is not None:
        proc.kill()
        raise RuntimeError(f"the simulator did not start: {(d / 'sim.log').read_text()[-2000:]}")
    return proc, url


@contextmanager
def on_cpus(cpus: set[int]) -> Iterator[None]:
    """This process, and the Locust processes it starts meanwhile, on `cpus` only."""
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def process_cpu_s(pid: int) -> float:
    """CPU seconds of `pid` and its descendants (nginx's workers), from /proc."""
    return sum(cpu_ticks(p) or 0 for p in (pid, *descendants(pid))) / TICKS


def machine_busy_s() -> float:
    """Busy CPU seconds of the whole machine so far (every state but idle and iowait)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return (sum(values[:8]) - idle) / TICKS


class CpuSampler:
    """The machine's and the server's CPU seconds every 0.2 s on the load's own clock, so their
    shares are taken over the schedule alone (not Locust's start and the drain)."""

    def __init__(self, server_pid: int) -> None:
        self.server_pid = server_pid
        self.samples: list[tuple[float, float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> CpuSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while True:
            self.samples.append((clock.now(), machine_busy_s(), process_cpu_s(self.server_pid)))
            if self._stop.wait(0.2):
                return

    def cores(self, start: float, end: float) -> tuple[float, float]:
        """(machine, server) busy cores between start and end."""
        inside = [x for x in self.samples if start <= x[0] <= end] or self.samples[-2:]
        (t0, m0, s0), (t1, m1, s1) = inside[0], inside[-1]
        span = max(t1 - t0, 1e-9)
        return (m1 - m0) / span, (s1 - s0) / span


@dataclass
class RateRun:
    summary: LoadSummary
    generator_cpu: list[float]  # each generator process's share of one core
    server_cpu: float  # the server's busy cores over the schedule
    machine_cores: float  # the machine's busy cores over the schedule


def one_rate(
    url: str,
    model: str,
    rate: float,
    processes: int,
    args: argparse.Namespace,
    d: Path,
    server_pid: int,
) -> RateRun:
    spec = LoadSpec(
        duration_s=args.duration,
        load=OpenLoop(
            rate_rps=rate, arrival="constant", max_in_flight=4000, max_send_lag_ms=args.max_lag_ms
        ),
        processes=processes,
        model=model,
        workload=Workload(max_tokens=8, prompt_words=8),
        drain_timeout_s=5,
    )
    with CpuSampler(server_pid) as cpu:
        run = run_load(spec, Target(url=url, api_key="sk-bench"), d / f"{processes}p-{rate:g}")
    workers = run.context.workers
    start = min((w.t0_s for w in workers), default=0.0)
    end = max((w.deadline_s for w in workers), default=0.0)
    machine, server = cpu.cores(start, end)
    shares = [w.cpu_s / w.wall_s for w in workers if w.wall_s > 0]
    return RateRun(summarize(run.samples, run.context), shares, server, machine)


def ceiling(
    label: str,
    url: str,
    model: str,
    processes: int,
    args: argparse.Namespace,
    d: Path,
    server_pid: int,
) -> float:
    print(f"\n{label}, {processes} process(es), {args.duration:g} s per rate:")
    best = 0.0
    for rate in args.rates:
        r = one_rate(url, model, rate, processes, args, d, server_pid)
        s = r.summary
        lag = s.generator.send_lag_ms
        p50 = lag.p50 if lag is not None and lag.p50 is not None else float("nan")
        p99 = lag.p99 if lag is not None and lag.p99 is not None else float("nan")
        ttft = s.latency.ttft_ms.p95 if s.latency.ttft_ms.p95 is not None else float("nan")
        kept = p99 <= args.max_lag_ms and s.counts.errors == 0
        generators = " ".join(f"{c:.2f}" for c in r.generator_cpu) or "-"
        print(
            f"  {rate:6g} req/s: sent {s.generator.sent_rate_rps:7.0f}/s, send lag p50"
            f" {p50:6.2f} p99 {p99:7.2f} ms, failed {s.counts.errors}, TTFT p95 {ttft:6.1f} ms;"
            f" CPU: generator {generators}, server {r.server_cpu:.2f}, the rest"
            f" {max(0.0, r.machine_cores - sum(r.generator_cpu) - r.server_cpu):.2f},"
            f" machine {r.machine_cores:.2f} of {os.cpu_count()}"
            + ("" if kept else "  (missed its schedule)")
        )
        if not kept:
            break
        best = rate
    top = " (the highest tried: --rates for more)" if best == args.rates[-1] else ""
    print(f"  ceiling: {best:g} req/s{top}")
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--rates",
        default="500,1000,1500,2000,2500,3000,3500,4000,5000,6000,8000,10000,12000,15000",
        type=lambda s: [float(x) for x in s.split(",")],
    )
    ap.add_argument("--duration", type=float, default=5.0)
    ap.add_argument("--max-lag-ms", type=float, default=10.0)
    ap.add_argument("--no-record", action="store_true", help="do not append to figures.jsonl")
    args = ap.parse_args()
    d = Path(tempfile.mkdtemp(prefix="bench-open-loop-"))
    figures: dict[str, float] = {}
    sim, sim_url = start_simulator(d)
    try:
        figures["sim_1p_rps"] = ceiling(
            "co-located simulator, cores shared", sim_url, "sim-model", 1, args, d, sim.pid
        )
    finally:
        sim.terminate()
        sim.wait(timeout=10)
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) > 1:
        generator_cpus, server_cpus = {cores[0]}, set(cores[1:])
        sim, sim_url = start_simulator(d, server_cpus)
        try:
            with on_cpus(generator_cpus):
                figures["sim_1p_own_core_rps"] = ceiling(
                    f"co-located simulator, a core each (generator on {sorted(generator_cpus)},"
                    f" simulator on {sorted(server_cpus)})",
                    sim_url,
                    "sim-model",
                    1,
                    args,
                    d,
                    sim.pid,
                )
        finally:
            sim.terminate()
            sim.wait(timeout=10)
    nginx, nginx_url = start_nginx(d)
    try:
        for processes in (1, 2):
            figures[f"canned_{processes}p_rps"] = ceiling(
                "nginx canned stream", nginx_url, "bench", processes, args, d, nginx.pid
            )
    finally:
        nginx.send_signal(signal.SIGQUIT)
        nginx.wait(timeout=10)
        shutil.rmtree(d, ignore_errors=True)
    one, two = figures["canned_1p_rps"], figures["canned_2p_rps"]
    if one and one < args.rates[-1]:
        figures["canned_2p_over_1p"] = round(two / one, 2)
        more = " (at least: two reached the highest rate tried)" if two == args.rates[-1] else ""
        print(f"\ntwo processes / one, nginx canned stream: {two / one:.2f}x{more}")
    if not args.no_record:
        record(
            "bench_open_loop",
            {"rates": args.rates, "duration_s": args.duration, "max_lag_ms": args.max_lag_ms},
            figures,
        )


if __name__ == "__main__":
    main()
