"""Alerts read from Alertmanager's API (`/api/v2/alerts`), for stacks whose Alertmanager sends
nothing to the harness (a deployment it did not start).

Every second the poller lists the active alerts; an alert that appears is logged as a `firing`
notification, one that disappears (or whose endsAt passed) as `resolved`, in the webhook's
payload shape, so fire and resolve checks read the same log whichever way alerts arrive.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import httpx

from harness.clients.http import http_get
from harness.clients.webhook import AlertLog


class AlertmanagerPoller(AlertLog):
    def __init__(
        self,
        url: str,
        headers: dict[str, str] | None = None,
        journal: Path | None = None,
        interval_s: float = 1.0,
    ) -> None:
        super().__init__(journal)
        self.url = url.rstrip("/")
        self._headers = headers or {}
        self._interval_s = interval_s
        self._active: dict[str, dict[str, Any]] = {}  # fingerprint -> alert
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="alertmanager-poll", daemon=True)
        self.errors = 0  # polls that failed (Alertmanager unreachable)
        self._primed = False  # the first listing is the state before the run, not news

    def start(self) -> AlertmanagerPoller:
        self.poll()  # alerts active before the run are known from the start, not "new"
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            self.poll()

    def poll(self) -> None:
        try:
            params = {"active": "true", "silenced": "false", "inhibited": "false"}
            r = http_get(
                f"{self.url}/api/v2/alerts", headers=self._headers, params=params, timeout=5.0
            )
            r.raise_for_status()
            listed: list[dict[str, Any]] = r.json()
        except (httpx.HTTPError, ValueError):
            self.errors += 1
            return
        now = {
            str(a.get("fingerprint")): a
            for a in listed
            if a.get("status", {}).get("state") == "active"
        }
        started = [a for f, a in now.items() if f not in self._active]
        ended = [a for f, a in self._active.items() if f not in now]
        self._active = now
        if not self._primed:
            self._primed = True
            return
        if started:
            self._record(_payload("firing", started))
        if ended:
            self._record(_payload("resolved", ended))


def _payload(status: str, alerts: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "status": status,
        "receiver": "alertmanager-api",
        "alerts": [
            {
                "status": status,
                "labels": a.get("labels", {}),
                "annotations": a.get("annotations", {}),
                "startsAt": a.get("startsAt"),
                "endsAt": a.get("endsAt"),
                "fingerprint": a.get("fingerprint"),
            }
            for a in alerts
        ],
    }
