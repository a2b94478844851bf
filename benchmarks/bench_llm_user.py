"""Benchmark (not a test): requests/s of one Locust process with the instrumented LLM user, beside
Locust's plain FastHttpUser, against one trivial endpoint (nginx answering a canned SSE stream).

    .venv/bin/python benchmarks/bench_llm_user.py [--users 32] [--duration 10] [--rounds 3]

Both run closed loop, no think time, one process each, one after the other, in rounds: each
round runs the pair, in turn plain first and instrumented first, so that a machine speeding up or
slowing down during the run favours neither. Each round's ratio is instrumented / plain; the
figure is their median, printed with their range. It asserts nothing: the numbers depend on the
machine and what else runs. Each run appends its figures to benchmarks/figures.jsonl
(`--no-record`: not).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from figures import record  # noqa: E402

from harness.clients.models import Target  # noqa: E402
from harness.load.runner import run_load  # noqa: E402
from harness.load.workload import WorkloadGenerator  # noqa: E402
from harness.measure.summary import summarize  # noqa: E402
from harness.spec.load import ClosedLoop, LoadSpec, Workload  # noqa: E402
from harness.stack.ports import free_ports  # noqa: E402
from harness.tools import find_binary  # noqa: E402

# One role chunk, three one-token chunks, finish, usage, [DONE]: a small but complete stream.
_CHUNKS = [{"role": "assistant"}, {"content": "a"}, {"content": "b"}, {"content": "c"}]
CANNED = "".join(
    "data: " + json.dumps({"choices": [{"index": 0, "delta": d, "finish_reason": None}]}) + "\n\n"
    for d in _CHUNKS
) + (
    "data: "
    + json.dumps({"choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]})
    + "\n\n"
    "data: "
    + json.dumps({"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 3}})
    + "\n\n"
    "data: [DONE]\n\n"
)


def free_port() -> int:
    return free_ports(1)[0]


def nginx_conf(d: Path, port: int) -> Path:
    body = CANNED.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n")
    conf = d / "nginx.conf"
    conf.write_text(
        f"""
daemon off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fcgi;
  uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
  keepalive_requests 1000000;
  server {{
    listen 127.0.0.1:{port};
    location / {{
      default_type text/event-stream;
      return 200 '{body}';
    }}
  }}
}}
"""
    )
    return conf


def start_nginx(d: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    conf = nginx_conf(d, port)
    proc = subprocess.Popen(
        [str(find_binary("nginx")), "-p", str(d), "-c", str(conf), "-e", str(d / "error.log")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            httpx.post(f"{url}/v1/chat/completions", timeout=1).raise_for_status()
            return proc, url
        except httpx.HTTPError:
            time.sleep(0.05)
    proc.terminate()
    raise RuntimeError(f"nginx did not start: {(d / 'error.log').read_text()}")


def instrumented_rps(url: str, users: int, duration: float, d: Path) -> float:
    spec = LoadSpec(
        duration_s=duration,
        load=ClosedLoop(users=users),
        model="bench",
        workload=Workload(max_tokens=3),
        drain_timeout_s=5,
    )
    run = run_load(spec, Target(url=url, api_key="sk-bench"), d / "instrumented")
    summary = summarize(run.samples, run.context)
    if summary.counts.errors:
        raise RuntimeError(f"instrumented run had errors: {summary.counts.by_kind}")
    return summary.counts.total / duration


def plain_rps(url: str, users: int, duration: float, d: Path) -> float:
    plan = WorkloadGenerator(Workload(max_tokens=3), "bench", "sk-bench", seed=1, worker=0).next()
    env = {**os.environ, "BENCH_PATH": plan.path, "BENCH_BODY": plan.body.decode()}
    cmd = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(ROOT / "benchmarks" / "plain_locustfile.py"),
        "--headless",
        "--only-summary",
        "--json",
        "-u",
        str(users),
        "-r",
        str(users * 100),
        "-t",
        f"{duration:g}s",
        "--host",
        url,
        "--stop-timeout",
        "1",
    ]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=duration + 60, cwd=d)
    stats = json.loads(out.stdout[out.stdout.index("[") :])
    total = int(sum(e["num_requests"] for e in stats))
    failures = sum(e["num_failures"] for e in stats)
    if failures:
        raise RuntimeError(f"plain run had {failures} failures")
    return total / duration


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=32)
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--rounds", type=int, default=3, help="pairs of runs, in alternating order")
    ap.add_argument("--no-record", action="store_true", help="do not append to figures.jsonl")
    args = ap.parse_args()
    d = Path(tempfile.mkdtemp(prefix="bench-llm-user-"))
    proc, url = start_nginx(d)
    print(
        f"endpoint: nginx return 200 (canned SSE, {len(CANNED)} bytes), {args.users} users, "
        f"{args.duration:g}s a run, 1 process, {args.rounds} rounds"
    )
    rounds: list[tuple[float, float]] = []
    runs = {
        "instrumented": lambda: instrumented_rps(url, args.users, args.duration, d),
        "plain": lambda: plain_rps(url, args.users, args.duration, d),
    }
    try:
        for i in range(args.rounds):
            order = ["instrumented", "plain"] if i % 2 == 0 else ["plain", "instrumented"]
            rps = {name: runs[name]() for name in order}
            rounds.append((rps["instrumented"], rps["plain"]))
            inst, plain = rounds[-1]
            print(
                f"  round {i + 1} ({order[0]} first): instrumented LLM user {inst:7.0f} req/s, "
                f"plain FastHttpUser {plain:7.0f} req/s, ratio {inst / plain:.2f}"
            )
    finally:
        proc.send_signal(signal.SIGQUIT)
        proc.wait(timeout=10)
        shutil.rmtree(d, ignore_errors=True)
    ratios = [i / p for i, p in rounds]
    inst = statistics.median(i for i, _ in rounds)
    plain = statistics.median(p for _, p in rounds)
    ratio = statistics.median(ratios)
    print(f"  instrumented LLM user : {inst:9.0f} req/s (median of {len(rounds)})")
    print(f"  plain FastHttpUser    : {plain:9.0f} req/s (median of {len(rounds)})")
    print(
        f"  ratio instrumented/plain: {ratio:.2f} (median of the rounds' ratios; "
        f"{min(ratios):.2f}-{max(ratios):.2f})"
    )
    if not args.no_record:
        record(
            "bench_llm_user",
            {
                "users": args.users,
                "duration_s": args.duration,
                "processes": 1,
                "rounds": args.rounds,
            },
            {
                "instrumented_rps": round(inst),
                "plain_rps": round(plain),
                "ratio": round(ratio, 3),
                "ratio_min": round(min(ratios), 3),
                "ratio_max": round(max(ratios), 3),
            },
        )


if __name__ == "__main__":
    main()
