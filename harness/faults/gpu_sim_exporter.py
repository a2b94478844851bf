"""A fake GPU memory exporter for machines without a GPU: it serves `llm_gpu_memory_used` and
`llm_gpu_memory_total` (bytes) for Prometheus, the figures GPUMemoryHigh reads, and takes the
used share from the `gpu_memory` fault (POST /state {"used_ratio": 0.97}). On a GPU machine an
NVML-fed exporter serves the same two metrics and nothing here runs.

Run as `python -m harness.faults.gpu_sim_exporter --port N --total-bytes B --idle-ratio R`.
"""

from __future__ import annotations

import argparse
import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CollectorRegistry, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from harness.clients.http import http_post


class _State:
    def __init__(self, total_bytes: int, idle_ratio: float) -> None:
        self.registry = CollectorRegistry()
        labels = {"gpu": "0", "source": "simulated"}
        self.used = Gauge(
            "llm_gpu_memory_used",
            "GPU memory in use, bytes (simulated)",
            list(labels),
            registry=self.registry,
        ).labels(**labels)
        total = Gauge(
            "llm_gpu_memory_total",
            "GPU memory, bytes (simulated)",
            list(labels),
            registry=self.registry,
        ).labels(**labels)
        total.set(total_bytes)
        self.total_bytes = total_bytes
        self.set_ratio(idle_ratio)

    def set_ratio(self, ratio: float) -> None:
        self.used.set(round(self.total_bytes * ratio))


def _handler(state: _State) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def _send(self, code: int, body: bytes, ctype: str = "text/plain") -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path == "/metrics":
                self._send(200, generate_latest(state.registry), CONTENT_TYPE_LATEST)
            else:
                self._send(404, b"not found\n")

        def do_POST(self) -> None:
            if self.path != "/state":
                self._send(404, b"not found\n")
                return
            try:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                ratio = float(body["used_ratio"])
                if not 0 <= ratio <= 1:
                    raise ValueError("used_ratio must be within 0..1")
            except (ValueError, KeyError, TypeError) as exc:
                self._send(400, f"{exc}\n".encode())
                return
            state.set_ratio(ratio)
            self._send(200, b"ok\n")

    return Handler


def set_used_ratio(base_url: str, ratio: float, timeout_s: float = 5.0) -> None:
    """What the gpu_memory fault calls (and its undo, with the idle ratio)."""
    r = http_post(f"{base_url}/state", json={"used_ratio": ratio}, timeout=timeout_s)
    r.raise_for_status()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--total-bytes", type=int, default=80 * 2**30)
    ap.add_argument("--idle-ratio", type=float, default=0.5)
    args = ap.parse_args(argv)
    server = ThreadingHTTPServer(
        ("127.0.0.1", args.port), _handler(_State(args.total_bytes, args.idle_ratio))
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
