"""The log store's query side: LogsQL over HTTP (VictoriaLogs `/select/logsql/query`).

Every line comes back as a flat JSON object; `_time`, `_msg` and `layer` (nginx, gateway) name
when, what and where. Queries are bounded: a result limit and a request timeout.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from harness.clients.http import http_get, http_post
from harness.errors import StackError

# Fields the store adds to every line; the evidence shows the rest.
_STORE_FIELDS = frozenset(
    {
        "_stream",
        "_stream_id",
        "facility",
        "facility_keyword",
        "priority",
        "severity",
        "format",
        "timestamp",
        "hostname",
        "app_name",
        "proc_id",
        "file",
    }
)


class LogLine(BaseModel):
    """One stored line: when, which layer, and its own fields."""

    model_config = ConfigDict(extra="ignore")
    time: str
    layer: str
    fields: dict[str, str] = Field(default_factory=dict)
    # Found by time, not by request id (model servers log none): other requests in flight at
    # the same moment may have written it.
    by_time: bool = False


class RequestEvidence(BaseModel):
    """A failed, degraded or fallback request with its log lines from each layer."""

    model_config = ConfigDict(extra="ignore")
    request_id: str
    status: int
    outcome: str  # "error: timeout", "served by fallback", "degraded", "status 502", ...
    lines: list[LogLine] = Field(default_factory=list)
    # An experiment's request: its phase (before / during / after the fault) and the checks that
    # read it. None and []: a load step's request (read by all its checks), or an older report.
    phase: str | None = None
    checks: list[str] = Field(default_factory=list)

    @property
    def layers(self) -> list[str]:
        return sorted({line.layer for line in self.lines})


def quote(value: str) -> str:
    """A LogsQL string literal."""
    return json.dumps(value)


def ids_filter(request_ids: Iterable[str]) -> str:
    """Lines of these requests from any layer: the gateway's id or, at nginx, the client's."""
    values = ",".join(quote(i) for i in request_ids)
    return f"(request_id:in({values}) or client_request_id:in({values}))"


def time_filter(start_s: float, end_s: float) -> str:
    def iso(t: float) -> str:
        return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    return f"_time:[{iso(start_s)}, {iso(end_s)}]"


class LogStore:
    def __init__(self, url: str, timeout_s: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s

    def flush(self) -> None:
        """Make what was ingested so far searchable now (the store otherwise takes about 1 s)."""
        http_get(f"{self.url}/internal/force_flush", timeout=self.timeout_s).raise_for_status()

    def settle(self, wait_s: float = 0.5) -> None:
        """Wait for the shippers' last batches (they post every 0.2 s), then flush."""
        time.sleep(wait_s)
        self.flush()

    def query(self, logsql: str, limit: int = 10_000) -> list[dict[str, Any]]:
        r = http_post(
            f"{self.url}/select/logsql/query",
            data={"query": logsql, "limit": str(limit)},
            timeout=self.timeout_s,
        )
        if r.status_code != 200:
            raise StackError(f"LogsQL {logsql!r}: status {r.status_code}: {r.text[:300]}")
        return [json.loads(line) for line in r.text.splitlines() if line.strip()]

    def lines_of(self, request_ids: Sequence[str], limit: int = 2_000) -> dict[str, list[LogLine]]:
        """Each request id's lines, oldest first, from every layer."""
        out: dict[str, list[LogLine]] = {i: [] for i in request_ids}
        if not request_ids:
            return out
        rows = self.query(f"{ids_filter(request_ids)} | sort by (_time)", limit=limit)
        for row in rows:
            rid = row.get("request_id") or row.get("client_request_id") or ""
            if rid not in out:
                rid = row.get("client_request_id", "")
            if rid in out:
                out[rid].append(to_line(row))
        return out

    def model_lines(self, start_s: float, end_s: float, limit: int = 10) -> list[LogLine]:
        """The model servers' lines written while one request was in flight."""
        rows = self.query(f"layer:=model {time_filter(start_s, end_s)} | sort by (_time)", limit)
        return [to_line(row).model_copy(update={"by_time": True}) for row in rows]


def to_line(row: dict[str, Any]) -> LogLine:
    fields = {
        k: str(v)
        for k, v in row.items()
        if k not in _STORE_FIELDS and k not in ("_time", "layer") and v not in ("", None)
    }
    if fields.get("_msg", "").startswith("missing _msg field"):
        del fields["_msg"]
    return LogLine(time=str(row.get("_time", "")), layer=str(row.get("layer", "?")), fields=fields)


def request_query(request_id: str) -> str:
    """The LogsQL a person pastes to see one request's lines across the layers."""
    return f"{ids_filter([request_id])} | sort by (_time)"


# This run's failed, degraded and fallback answers, newest first (the store holds one run).
FAILED_QUERY = "status:>=400 or served_by:in(fallback,degraded) | sort by (_time desc) | limit 50"


def how_to_query(url: str) -> list[str]:
    """What `harness up` prints under the log store's address: commands ready to paste."""
    curl = f"curl -s {url}/select/logsql/query --data-urlencode"
    return [
        f"  logs         {url}   (VictoriaLogs; LogsQL at /select/logsql/query)",
        "    this run's failed, degraded and fallback requests, newest first:",
        f"      {curl} 'query={FAILED_QUERY}'",
        "    one request's lines from nginx and the gateway (its X-Request-Id):",
        f"      {curl} 'query={request_query('REQUEST_ID')}'",
    ]
