"""Alertmanager webhook receiver: records every notification, with its arrival time."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class WebhookAlert(BaseModel):
    """One alert of an Alertmanager webhook notification (its documented fields)."""

    model_config = ConfigDict(extra="ignore")
    status: str = ""
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    startsAt: str | None = None
    endsAt: str | None = None


class WebhookPayload(BaseModel):
    """A notification as the report keeps it: when it arrived and what Alertmanager sent."""

    model_config = ConfigDict(extra="ignore")
    received_at: float = 0.0  # unix seconds
    status: str = ""
    receiver: str = ""
    alerts: list[WebhookAlert] = Field(default_factory=list)
    groupLabels: dict[str, str] = Field(default_factory=dict)


@dataclass(frozen=True)
class AlertNotification:
    received_at: float  # unix seconds
    status: str  # "firing" | "resolved" (of the group)
    alerts: list[dict[str, Any]]
    payload: dict[str, Any] = field(repr=False)

    def typed(self) -> WebhookPayload:
        return WebhookPayload.model_validate({**self.payload, "received_at": self.received_at})

    def alert_names(self, status: str | None = None) -> set[str]:
        return {
            a.get("labels", {}).get("alertname", "")
            for a in self.alerts
            if status is None or a.get("status") == status
        }


class AlertLog:
    """A thread-safe log of alert notifications, kept by whoever receives them (the webhook
    below, or `alertmanager.AlertmanagerPoller` reading Alertmanager's API)."""

    def __init__(self, journal: Path | None = None) -> None:
        self.journal = journal
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._received: list[AlertNotification] = []

    def _record(self, payload: dict[str, Any]) -> None:
        note = AlertNotification(
            received_at=time.time(),
            status=str(payload.get("status", "")),
            alerts=list(payload.get("alerts", [])),
            payload=payload,
        )
        with self._cond:
            self._received.append(note)
            if self.journal is not None:
                with self.journal.open("a") as f:
                    f.write(json.dumps({"received_at": note.received_at, **payload}) + "\n")
            self._cond.notify_all()

    @property
    def notifications(self) -> list[AlertNotification]:
        with self._lock:
            return list(self._received)

    def wait_for(
        self, alertname: str, status: str = "firing", timeout_s: float = 60.0
    ) -> AlertNotification | None:
        """The first notification carrying `alertname` in `status`, waiting up to timeout_s."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while True:
                for note in self._received:
                    if alertname in note.alert_names(status):
                        return note
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._cond.wait(remaining)

    def close(self) -> None:
        return None


class AlertReceiver(AlertLog):
    """HTTP server on 127.0.0.1 that Alertmanager posts to; thread-safe log of notifications."""

    def __init__(self, port: int, journal: Path | None = None) -> None:
        super().__init__(journal)
        self.port = port
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                try:
                    payload = json.loads(body)
                except ValueError:
                    self.send_response(400)
                    self.end_headers()
                    return
                receiver._record(payload)
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return  # Alertmanager retries are noise on the console

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="alert-webhook", daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/alerts"

    def start(self) -> AlertReceiver:
        self._thread.start()
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
