"""Ship the gateway's JSON log lines to the log store (VictoriaLogs' `/insert/jsonline`).

A logging handler: `emit` formats the line and appends it to a bounded in-memory queue, nothing
more, so a request never waits on the store. A daemon thread sleeps until a line is queued, lets
more gather for `interval_s` (less once `batch` lines wait), and posts them on one kept-alive
connection (an idle gateway wakes for nothing, a busy one opens no connection per post). When the
store is slow or down the posts fail or time out on that thread; lines past `max_pending` are
dropped and counted, never raised.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from http.client import HTTPConnection, HTTPException, HTTPSConnection
from urllib.parse import urlsplit

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
        parts = urlsplit(url)
        self._https = parts.scheme == "https"
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port
        self._path = parts.path + (f"?{parts.query}" if parts.query else "")
        self._conn: HTTPConnection | None = None
        self._pending: deque[str] = deque()
        self._wake = threading.Event()  # a line is queued
        self._full = threading.Event()  # a batch is waiting, or closing
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
        waiting = len(self._pending)
        if waiting == 1:
            self._wake.set()
        if waiting >= self.batch:
            self._full.set()

    def _take(self) -> list[str]:
        out: list[str] = []
        while self._pending and len(out) < self.batch:
            out.append(self._pending.popleft())
        return out

    def _post(self, lines: list[str]) -> None:
        body = ("\n".join(lines) + "\n").encode()
        try:
            self._send(body)
            self.sent += len(lines)
        except (OSError, HTTPException):  # refused, timed out, an error status: these lines are
            self._disconnect()  # lost, the gateway is not
            self.failed_posts += 1
            self.dropped += len(lines)

    def _send(self, body: bytes) -> None:
        """POST on the kept connection; once more on a fresh one when the kept one had been
        closed by the store while idle (its keep-alive timeout)."""
        reused = self._conn is not None
        try:
            self._request(body)
        except (ConnectionError, HTTPException):
            if not reused:
                raise
            self._disconnect()
            self._request(body)

    def _request(self, body: bytes) -> None:
        if self._conn is None:
            cls = HTTPSConnection if self._https else HTTPConnection
            self._conn = cls(self._host, self._port, timeout=self.timeout_s)
        self._conn.request("POST", self._path, body, {"Content-Type": CONTENT_TYPE})
        resp = self._conn.getresponse()
        resp.read()
        if resp.status >= 300:
            raise OSError(f"HTTP {resp.status} from the log store")

    def _disconnect(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait()
            self._wake.clear()
            self._full.wait(self.interval_s)
            self._full.clear()
            while lines := self._take():
                self._post(lines)

    def close(self) -> None:
        """Post what is still queued (bounded by the post timeout), then stop the thread."""
        self._stop.set()
        self._wake.set()
        self._full.set()
        self._thread.join(timeout=self.timeout_s + 1)
        if self._thread.is_alive():  # a post still hangs on the store: what is left is lost
            self.dropped += len(self._pending)
            self._pending.clear()
        else:
            while lines := self._take():
                self._post(lines)
            self._disconnect()
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
