"""A small typed client of Prometheus' HTTP API: instant and range queries, targets, alerts.

Every call is bounded (`timeout_s`, also sent to Prometheus as the query timeout). Failures raise
PrometheusError saying which call, what came back and what to check; nothing retries silently.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import httpx

from harness.clients.http import new_client
from harness.errors import StackError


class PrometheusError(StackError):
    """A Prometheus API call failed (unreachable, timed out, bad query, or status != success)."""


@dataclass(frozen=True)
class InstantSample:
    labels: dict[str, str]
    time_s: float
    value: float


@dataclass(frozen=True)
class Target:
    job: str
    instance: str
    health: str  # "up" | "down" | "unknown"
    scrape_url: str
    last_error: str
    labels: dict[str, str]


@dataclass(frozen=True)
class Rule:
    group: str
    name: str
    kind: str  # "alerting" | "recording"
    state: str  # alerting rules: "inactive" | "pending" | "firing"; recording rules: ""
    health: str  # "ok" | "err" | "unknown"
    last_error: str


@dataclass(frozen=True)
class Alert:
    name: str
    state: str  # "pending" | "firing"
    labels: dict[str, str]
    annotations: dict[str, str]
    active_at: str
    value: str


def _float(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


class PrometheusClient:
    """Prometheus's HTTP API, the one place the harness speaks it. `headers`: the credentials an
    external stack's Prometheus asks for (`RunningStack.prometheus_headers`)."""

    def __init__(
        self,
        base_url: str,
        timeout_s: float = 5.0,
        transport: httpx.BaseTransport | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self._http = new_client(
            base_url=self.base_url, timeout=timeout_s, transport=transport, headers=headers or {}
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> PrometheusClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _get(self, path: str, params: dict[str, str] | None = None) -> Any:
        what = f"GET {self.base_url}{path}"
        try:
            r = self._http.get(path, params=params)
        except httpx.TimeoutException:
            raise PrometheusError(
                f"{what}: no answer within {self.timeout_s:g}s (is Prometheus overloaded?)"
            ) from None
        except httpx.HTTPError as exc:
            raise PrometheusError(
                f"{what}: {type(exc).__name__}: {exc} (is Prometheus running?)"
            ) from None
        try:
            body = r.json()
        except ValueError:
            raise PrometheusError(
                f"{what}: HTTP {r.status_code}, not JSON: {r.text[:200]!r}"
            ) from None
        if not isinstance(body, dict):
            raise PrometheusError(
                f"{what}: HTTP {r.status_code}, not an API object: {r.text[:200]!r}"
            )
        if r.status_code >= 400 or body.get("status") != "success":
            msg = body.get("error") or r.text[:200]
            raise PrometheusError(
                f"{what}: HTTP {r.status_code}, {body.get('errorType', 'error')}: {msg}"
            )
        return body.get("data")

    # --- queries -----------------------------------------------------------------------------
    def query(self, expr: str, time_s: float | None = None) -> list[InstantSample]:
        """Instant query; scalar results come back as one sample without labels."""
        params = {"query": expr, "timeout": f"{self.timeout_s:g}s"}
        if time_s is not None:
            params["time"] = f"{time_s:.3f}"
        data = self._get("/api/v1/query", params)
        rtype, result = data.get("resultType"), data.get("result")
        if rtype in ("scalar", "string"):
            return [InstantSample({}, _float(result[0]), _float(result[1]))]
        return [
            InstantSample(
                dict(item.get("metric", {})), _float(item["value"][0]), _float(item["value"][1])
            )
            for item in result or []
        ]

    def metric_names(self) -> list[str]:
        return [str(n) for n in self._get("/api/v1/label/__name__/values") or []]

    # --- state -------------------------------------------------------------------------------
    def targets(self) -> list[Target]:
        data = self._get("/api/v1/targets", {"state": "active"})
        out = []
        for t in data.get("activeTargets") or []:
            labels = dict(t.get("labels", {}))
            out.append(
                Target(
                    job=labels.get("job", ""),
                    instance=labels.get("instance", ""),
                    health=str(t.get("health", "unknown")),
                    scrape_url=str(t.get("scrapeUrl", "")),
                    last_error=str(t.get("lastError", "")),
                    labels=labels,
                )
            )
        return out

    def alerts(self) -> list[Alert]:
        data = self._get("/api/v1/alerts")
        out = []
        for a in data.get("alerts") or []:
            labels = dict(a.get("labels", {}))
            out.append(
                Alert(
                    name=labels.get("alertname", ""),
                    state=str(a.get("state", "")),
                    labels=labels,
                    annotations=dict(a.get("annotations", {})),
                    active_at=str(a.get("activeAt", "")),
                    value=str(a.get("value", "")),
                )
            )
        return out

    def alert_rules(self) -> list[tuple[str, str, str]]:
        """(group, rule name, state) of every alerting rule; state: inactive, pending, firing."""
        return [(r.group, r.name, r.state) for r in self.rules(alerting_only=True)]

    def rules(self, alerting_only: bool = False) -> list[Rule]:
        """Every rule loaded, with its group, health and last evaluation error."""
        data = self._get("/api/v1/rules", {"type": "alert"} if alerting_only else None)
        return [
            Rule(
                group=str(g.get("name", "")),
                name=str(r.get("name", "")),
                kind=str(r.get("type", "")),
                state=str(r.get("state", "")),
                health=str(r.get("health", "unknown")),
                last_error=str(r.get("lastError") or ""),
            )
            for g in data.get("groups") or []
            for r in g.get("rules") or []
        ]

    def reload(self) -> None:
        """Prometheus reads its configuration and rule files again (`--web.enable-lifecycle`)."""
        what = f"POST {self.base_url}/-/reload"
        try:
            r = self._http.post("/-/reload", timeout=30)
        except httpx.HTTPError as exc:
            raise PrometheusError(f"{what}: {type(exc).__name__}: {exc}") from None
        if r.status_code != 200:
            raise PrometheusError(f"{what}: refused, HTTP {r.status_code}: {r.text[:200]}")

    def ready(self) -> bool:
        try:
            return self._http.get("/-/ready").status_code == 200
        except httpx.HTTPError:
            return False
