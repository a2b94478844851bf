"""GPU and memory figures for /metrics.

GPU series come from NVML (`pynvml`, shipped by nvidia-ml-py) and are read at scrape time. Without
NVML or without a GPU the series are ABSENT rather than zero: a zero would claim an idle GPU and
silence the GPUMemoryHigh rule for the wrong reason.

`python -m gateway.gpu --port N` (with stack/ on PYTHONPATH) serves the same GPU families alone.
"""

from __future__ import annotations

import os
import resource
from collections.abc import Iterator
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def process_rss_bytes() -> float:
    """Current resident set size of this process; the peak RSS where /proc is missing."""
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            return float(int(f.read().split()[1]) * _PAGE_SIZE)
    except (OSError, ValueError, IndexError):
        # ru_maxrss is in KiB on Linux.
        return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)


def _load_nvml() -> Any | None:
    try:
        import pynvml  # type: ignore[import-not-found,import-untyped,unused-ignore]
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
        if pynvml.nvmlDeviceGetCount() < 1:
            return None
    except Exception:  # NVMLError_LibraryNotFound, DriverNotLoaded, ...: no usable GPU
        return None
    return pynvml


class GpuCollector(Collector):
    """Yields llm_gpu_* families per GPU index; nothing at all when NVML is unusable."""

    def __init__(self) -> None:
        self._nvml = _load_nvml()

    @property
    def available(self) -> bool:
        return self._nvml is not None

    def collect(self) -> Iterator[GaugeMetricFamily]:
        nvml = self._nvml
        if nvml is None:
            return
        util = GaugeMetricFamily("llm_gpu_utilization_percent", "GPU utilization", labels=["gpu"])
        used = GaugeMetricFamily("llm_gpu_memory_used", "GPU memory used in bytes", labels=["gpu"])
        total = GaugeMetricFamily(
            "llm_gpu_memory_total", "GPU memory total in bytes", labels=["gpu"]
        )
        try:
            for i in range(nvml.nvmlDeviceGetCount()):
                handle = nvml.nvmlDeviceGetHandleByIndex(i)
                rates = nvml.nvmlDeviceGetUtilizationRates(handle)
                mem = nvml.nvmlDeviceGetMemoryInfo(handle)
                util.add_metric([str(i)], float(rates.gpu))
                used.add_metric([str(i)], float(mem.used))
                total.add_metric([str(i)], float(mem.total))
        except Exception:  # a GPU that vanished mid-scrape must not break /metrics
            return
        yield util
        yield used
        yield total


def serve(port: int) -> None:
    """The collector alone on 127.0.0.1:`port` (GET /metrics): the same families the gateway
    serves, for a machine with a GPU and no stack (`harness gpu-check`). Exits 3 when NVML is
    unusable, since an exporter with nothing to serve would only look healthy."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.exposition import CONTENT_TYPE_LATEST

    collector = GpuCollector()
    if not collector.available:
        print("NVML unusable: no pynvml (nvidia-ml-py), no driver library, or no GPU", flush=True)
        raise SystemExit(3)
    registry = CollectorRegistry()
    registry.register(collector)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            found = self.path == "/metrics"
            body = generate_latest(registry) if found else b"not found\n"
            self.send_response(200 if found else 404)
            self.send_header("Content-Type", CONTENT_TYPE_LATEST if found else "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Serve the NVML GPU figures alone.")
    parser.add_argument("--port", type=int, required=True)
    serve(parser.parse_args().port)
