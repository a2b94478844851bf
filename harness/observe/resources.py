"""CPU and memory of each service while the stack works (PRACTICES.md: measure resource usage).

Reads /proc for each service's process and its descendants (nginx workers, forked servers), so
it needs the local provider's PIDs; containers (no host PID here) are skipped and say so.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel

from harness.stack.process import descendants
from harness.stack.provider import ServiceHandle

TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def cpu_ticks(pid: int) -> int | None:
    """User + system clock ticks of one process (`TICKS` a second), None when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[11]) + int(fields[12])  # utime + stime


def rss_bytes(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        return None


class ServiceUsage(BaseModel):
    service: str
    samples: int = 0
    cpu_percent_mean: float | None = None  # 100 = one core busy
    cpu_percent_max: float | None = None
    rss_mb_max: float | None = None


class ResourceSampler:
    """Samples every `interval_s` in a thread between start() and stop()."""

    def __init__(self, services: Mapping[str, ServiceHandle], interval_s: float = 1.0) -> None:
        self.services = dict(services)
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="resource-sampler", daemon=True)
        self._cpu: dict[str, list[float]] = {n: [] for n in self.services}
        self._rss: dict[str, list[int]] = {n: [] for n in self.services}

    def _totals(self, svc: ServiceHandle) -> tuple[int, int] | None:
        pid = svc.pid
        if pid is None or not svc.alive():
            return None
        ticks = rss = 0
        for p in (pid, *descendants(pid)):
            t, r = cpu_ticks(p), rss_bytes(p)
            ticks += t or 0
            rss += r or 0
        return ticks, rss

    def _run(self) -> None:
        last: dict[str, tuple[float, int]] = {}
        while not self._stop.is_set():
            now = time.monotonic()
            for name, svc in self.services.items():
                totals = self._totals(svc)
                if totals is None:
                    continue
                ticks, rss = totals
                self._rss[name].append(rss)
                if name in last:
                    t0, ticks0 = last[name]
                    if now > t0 and ticks >= ticks0:
                        self._cpu[name].append((ticks - ticks0) / TICKS / (now - t0) * 100.0)
                last[name] = (now, ticks)
            self._stop.wait(self.interval_s)

    def start(self) -> ResourceSampler:
        self._thread.start()
        return self

    def stop(self) -> list[ServiceUsage]:
        self._stop.set()
        self._thread.join(timeout=10)
        out = []
        for name in self.services:
            cpu, rss = self._cpu[name], self._rss[name]
            out.append(
                ServiceUsage(
                    service=name,
                    samples=len(rss),
                    cpu_percent_mean=round(sum(cpu) / len(cpu), 1) if cpu else None,
                    cpu_percent_max=round(max(cpu), 1) if cpu else None,
                    rss_mb_max=round(max(rss) / 2**20, 1) if rss else None,
                )
            )
        return out
