"""Prometheus' own view of alert states over an experiment: when each alert was first seen
pending and firing (`/api/v1/alerts`, polled), so a check can say the rule went pending before
it fired, not only that Alertmanager delivered it."""

from __future__ import annotations

import threading
import time

from harness.observe.prometheus import PrometheusClient, PrometheusError


class AlertStates:
    def __init__(self, prometheus: str, interval_s: float = 0.5) -> None:
        self._client = PrometheusClient(prometheus, timeout_s=2.0)
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="alert-states", daemon=True)
        self.first_seen: dict[tuple[str, str], float] = {}  # (alert, state) -> wall time
        self.errors = 0

    def start(self) -> AlertStates:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._client.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                alerts = self._client.alerts()
            except PrometheusError:
                self.errors += 1
            else:
                t = time.time()
                for a in alerts:
                    self.first_seen.setdefault((a.name, a.state), t)
            self._stop.wait(self._interval_s)
