"""Prometheus' own view of alert rules over an experiment: each rule's state (inactive, pending,
firing) per poll, so a check can say the rule went pending after the fault began and before it
fired, not only that Alertmanager delivered it.

Rules are told apart by group: a live short-window copy (`live_rules.py`) has the deployed
rule's name, and the deployed rule may still be pending from an earlier experiment's errors. A
rule counts as gone pending only when it is seen pending after being seen in another state.
"""

from __future__ import annotations

import threading
import time

from harness.clients.prometheus import PrometheusClient, PrometheusError


class AlertStates:
    def __init__(
        self, prometheus: str, interval_s: float = 0.5, headers: dict[str, str] | None = None
    ) -> None:
        self._client = PrometheusClient(prometheus, timeout_s=2.0, headers=headers)
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="alert-states", daemon=True)
        self.seen: list[tuple[float, str, str, str]] = []  # (wall time, group, alert, state)
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
                rules = self._client.alert_rules()
            except PrometheusError:
                self.errors += 1
            else:
                t = time.time()
                self.seen += [(t, group, name, state) for group, name, state in rules]
            self._stop.wait(self._interval_s)

    def first(self, alert: str, state: str, since: float) -> float | None:
        """When some rule named `alert` first entered `state` at or after `since` (wall time):
        seen in it after being seen in another state."""
        before: dict[str, str] = {}  # group -> the rule's last state
        for t, group, name, s in self.seen:
            if name != alert:
                continue
            if s == state and t >= since and before.get(group, state) != state:
                return t
            before[group] = s
        return None
