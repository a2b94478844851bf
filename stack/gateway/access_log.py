"""Structured JSON log lines: one per request, on stderr.

Carries the request id, replica, status, who served it, cache outcome, latency and tokens; never
the API key or any prompt or answer text.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

import orjson

LOGGER_NAME = "gateway.access"


class JsonFormatter(logging.Formatter):
    """One JSON object per record; `static` fields are added to every line, and `store_time`
    adds `_time` in nanoseconds (the log store's time field).

    A record's own fields are encoded once (orjson) and kept on the record: the log store's
    handler then only appends its static fields to the line the stderr handler made."""

    def __init__(self, static: dict[str, str] | None = None, store_time: bool = False) -> None:
        super().__init__()
        self.static = dict(static or {})
        self.store_time = store_time

    def format(self, record: logging.LogRecord) -> str:
        cached: tuple[dict[str, Any], bytes] | None = record.__dict__.get(_ENCODED)
        if cached is None:
            cached = self._encode(record)
            record.__dict__[_ENCODED] = cached
        line, raw = cached
        extra: dict[str, Any] = {k: v for k, v in self.static.items() if k not in line}
        if self.store_time:
            extra["_time"] = int(record.created * 1e9)
        if extra:
            raw = raw[:-1] + b"," + _dumps(extra)[1:]
        return raw.decode()

    def _encode(self, record: logging.LogRecord) -> tuple[dict[str, Any], bytes]:
        line: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            line.update(fields)
        if record.exc_info and record.exc_info[0] is not None:
            # The type and the traceback: an unhandled exception must be findable in the store.
            line["exception_type"] = record.exc_info[0].__name__
            line["exception"] = self.formatException(record.exc_info)
        return line, _dumps(line)


_ENCODED = "_gateway_json"


def _dumps(value: dict[str, Any]) -> bytes:
    """orjson, anything it cannot encode as its str(); what it refuses outright (an integer
    beyond 64 bits) by the standard library."""
    try:
        return orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:
        return json.dumps(value, separators=(",", ":"), default=str).encode()


def get_logger(name: str = LOGGER_NAME) -> logging.Logger:
    """A logger writing JSON lines to stderr, configured once per process."""
    logger = logging.getLogger(name)
    if not any(getattr(h, "_gateway_json", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        handler._gateway_json = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
    return logger


class RequestLog:
    """Fields of one request's log line, filled in as the request moves through the gateway."""

    def __init__(self, request_id: str, replica: str, method: str, path: str) -> None:
        self.started = time.perf_counter()
        self.fields: dict[str, Any] = {
            "event": "request",
            "request_id": request_id,
            "replica": replica,
            "method": method,
            "path": path,
        }

    def set(self, **fields: Any) -> None:
        self.fields.update({k: v for k, v in fields.items() if v is not None})

    def elapsed_s(self) -> float:
        return time.perf_counter() - self.started

    def emit(self, logger: logging.Logger) -> None:
        self.fields["latency_ms"] = round(self.elapsed_s() * 1000, 2)
        status = int(self.fields.get("status", 0))
        level = logging.ERROR if status >= 500 else logging.INFO
        logger.log(level, "request", extra={"fields": self.fields})
