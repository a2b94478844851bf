"""Benchmark (not a test): what shipping a gateway log line to the log store costs the caller.

    .venv/bin/python benchmarks/bench_log_shipping.py [--lines 20000]

Logs the same request line through the gateway's logger three ways, one after the other:
stderr only (to /dev/null), stderr plus the store shipper to a live VictoriaLogs (the project's
built binary on 127.0.0.1), and the same with that store stopped (SIGSTOP), and prints the time
one log call takes (p50 / p99 / max, microseconds) and what the shipper sent and dropped.
It asserts nothing: the numbers depend on the machine and what else runs.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "stack")]

from gateway.access_log import JsonFormatter  # noqa: E402
from gateway.log_shipping import LogStoreHandler  # noqa: E402
from harness.stack.logs_service import jsonline_url  # noqa: E402
from harness.stack.ports import free_ports  # noqa: E402
from harness.tools import find_binary  # noqa: E402

FIELDS = {
    "event": "request",
    "request_id": "bench-1",
    "replica": "gateway-0",
    "status": 200,
    "served_by": "primary",
    "cache": "miss",
    "latency_ms": 12.3,
}


def timed_calls(log: logging.Logger, lines: int) -> np.ndarray:
    out = np.empty(lines)
    for i in range(lines):
        t0 = time.perf_counter()
        log.info("request", extra={"fields": FIELDS})
        out[i] = time.perf_counter() - t0
        if i % 100 == 99:
            time.sleep(0.001)  # about the pace of a busy gateway, not one tight burst
    return out * 1e6


def row(name: str, us: np.ndarray, note: str = "") -> None:
    p50, p99 = np.percentile(us, [50, 99], method="inverted_cdf")
    print(
        f"{name:<32} n={len(us):<6} p50 {p50:6.1f}  p99 {p99:6.1f}  max {us.max():8.1f} us  {note}"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=20_000)
    args = ap.parse_args()
    port = free_ports(1)[0]
    with tempfile.TemporaryDirectory(prefix="bench-logs-") as tmp:
        store = subprocess.Popen(
            [
                str(find_binary("victoria-logs")),
                f"-httpListenAddr=127.0.0.1:{port}",
                f"-storageDataPath={tmp}/data",
                "-loggerLevel=ERROR",
            ],
        )
        try:
            for _ in range(100):
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).text == "OK":
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            devnull = open(os.devnull, "w")  # noqa: SIM115 - closed at the end
            plain = logging.StreamHandler(devnull)
            plain.setFormatter(JsonFormatter())
            log = logging.getLogger("bench.gateway.access")
            log.setLevel(logging.INFO)
            log.propagate = False
            log.handlers = [plain]
            row("stderr only", timed_calls(log, args.lines))

            url = jsonline_url(f"http://127.0.0.1:{port}")
            shipper = LogStoreHandler(url, {"layer": "gateway", "replica": "gateway-0"})
            log.handlers = [plain, shipper]
            us = timed_calls(log, args.lines)
            shipper.close()
            row("stderr + shipper, store up", us, f"sent {shipper.sent} dropped {shipper.dropped}")

            store.send_signal(signal.SIGSTOP)
            shipper = LogStoreHandler(url, {"layer": "gateway", "replica": "gateway-0"})
            log.handlers = [plain, shipper]
            us = timed_calls(log, args.lines)
            store.send_signal(signal.SIGCONT)
            shipper.close()
            row(
                "stderr + shipper, store stopped",
                us,
                f"sent {shipper.sent} dropped {shipper.dropped}",
            )
            devnull.close()
        finally:
            store.send_signal(signal.SIGCONT)
            store.terminate()
            store.wait(timeout=10)


if __name__ == "__main__":
    main()
