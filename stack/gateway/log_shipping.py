"""Ship the gateway's JSON log lines to the log store (VictoriaLogs' `/insert/jsonline`).

A logging handler: `emit` formats the line and appends it to a bounded in-memory queue, nothing
more, so a request never waits on the store. A daemon thread posts what has queued every
`interval_s` (or sooner once `batch` lines wait). When the store is slow or down the posts fail
or time out on that thread; lines past `max_pending` are dropped and counted, never raised.
"""

from __future__ import annotations

import logging
import threading
import urllib.request
from collections import deque

from gateway.access_log import LOGGER_NAME, JsonFormatter

CONTENT_TYPE = "application/stream+json"


class LogStoreHandler(logging.Handler):
    def __init__(
        self,
        url: str,
        fields: dict[str, str],
        *,
        batch: int = 500,
        interval_s: float = 0.2,
        max_pending: int = 20_000,
        timeout_s: float = 2.0,
    ) -> None:
        super().__init__()
        self.url = url
        self.batch = batch
        self.interval_s = interval_s
        self.max_pending = max_pending
        self.timeout_s = timeout_s
        self.setFormatter(JsonFormatter(static=fields, store_time=True))
        self._pending: deque[str] = deque()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self.sent = 0
        self.dropped = 0
        self.failed_posts = 0
        self._thread = threading.Thread(target=self._run, name="log-shipper", daemon=True)
        self._thread.start()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:
            self.handleError(record)
            return
        if len(self._pending) >= self.max_pending:
            self.dropped += 1
            return
        self._pending.append(line)
        if len(self._pending) >= self.batch:
            self._wake.set()

    def _take(self) -> list[str]:
        out: list[str] = []
        while self._pending and len(out) < self.batch:
            out.append(self._pending.popleft())
        return out

    def _post(self, lines: list[str]) -> None:
        body = ("\n".join(lines) + "\n").encode()
        req = urllib.request.Request(
            self.url, data=body, method="POST", headers={"Content-Type": CONTENT_TYPE}
        )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                resp.read()
            self.sent += len(lines)
        except OSError:  # refused, timed out, HTTP error: these lines are lost, the gateway is not
            self.failed_posts += 1
            self.dropped += len(lines)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.interval_s)
            self._wake.clear()
            while lines := self._take():
                self._post(lines)

    def close(self) -> None:
        """Post what is still queued (bounded by the post timeout), then stop the thread."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=self.timeout_s + 1)
        while lines := self._take():
            self._post(lines)
        super().close()


def ship_logs(url: str, replica: str) -> LogStoreHandler:
    """Attach one shipper to the gateway's request log and to uvicorn's error log (exceptions
    that escape the app); the caller closes it at shutdown."""
    handler = LogStoreHandler(url, {"layer": "gateway", "replica": replica})
    for name in (LOGGER_NAME, "uvicorn.error"):
        logging.getLogger(name).addHandler(handler)
    return handler


def unship_logs(handler: LogStoreHandler) -> None:
    for name in (LOGGER_NAME, "uvicorn.error"):
        logging.getLogger(name).removeHandler(handler)
    handler.close()
