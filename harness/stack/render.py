"""Config files for nginx, Prometheus (scrape config + alert rules) and Alertmanager.

Pure functions from values to text; the planner writes them into the run folder.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from harness.paths import STACK_DIR
from harness.spec.stack import AlertmanagerSpec, PrometheusSpec

_PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*\}\}")
_LABEL = re.compile(r"[A-Za-z0-9_-]+")  # written into nginx's log_format unescaped


def fill_template(text: str, values: Mapping[str, object]) -> str:
    """Replace `{{ name }}`; a name with no value is an error (a silent blank breaks configs)."""

    def sub(m: re.Match[str]) -> str:
        key = m.group(1)
        if key not in values:
            raise KeyError(f"template placeholder {key!r} has no value")
        return str(values[key])

    return _PLACEHOLDER.sub(sub, text)


_BUFFERING_OFF = "            proxy_buffering off;"
# A misconfigured edge for the gate's tests: buffers and compresses streams even when the
# gateway says not to (with buffering on, nothing flushes gzip until the answer ends).
_BUFFERING_ON = "\n".join(
    "            " + line
    for line in (
        "proxy_buffering on;",
        "proxy_ignore_headers X-Accel-Buffering;",
        "gzip on;",
        "gzip_min_length 0;",
        "gzip_types text/event-stream application/json;",
    )
)


def _syslog_access_log(syslog_port: int | None) -> str:
    # The log store's syslog input parses `@cee:` JSON into fields (see nginx.conf.tmpl).
    if syslog_port is None:
        return ""
    return f"access_log syslog:server=127.0.0.1:{syslog_port},tag=nginx json_lines;"


def render_nginx(
    *,
    run_dir: Path,
    port: int,
    status_port: int,
    gateway_ports: Sequence[int],
    buffering: bool = False,
    syslog_port: int | None = None,
    stack_label: str | None = None,
) -> str:
    """`stack_label`: a `stack` field on each access line (a rollout's versions share one store)."""
    if stack_label is not None and not _LABEL.fullmatch(stack_label):
        raise ValueError(f"stack label {stack_label!r}: letters, digits, '-' and '_' only")
    template = (STACK_DIR / "nginx" / "nginx.conf.tmpl").read_text()
    servers = "\n".join(
        f"        server 127.0.0.1:{p} max_fails=1 fail_timeout=2s;" for p in gateway_ports
    )
    # As root, nginx would switch its workers to "nobody", who cannot write our run folder.
    user_line = "user root root;" if os.geteuid() == 0 else ""
    return fill_template(
        template,
        {
            "user_line": user_line,
            "buffering": _BUFFERING_ON if buffering else _BUFFERING_OFF,
            "run_dir": run_dir,
            "log_dir": run_dir / "logs",
            "tmp_dir": run_dir / "nginx-tmp",
            "upstream_servers": servers,
            "port": port,
            "status_port": status_port,
            "syslog_access_log": _syslog_access_log(syslog_port),
            "stack_field": f'"stack":"{stack_label}",' if stack_label else "",
        },
    )


def alert_rules(spec: PrometheusSpec) -> dict[str, Any]:
    """PRACTICES.md's three alerts, written as PromQL that evaluates.

    PRACTICES.md states HighErrorRate as ">5% error rate": a ratio of error rate to request
    rate (its literal `rate(...) > 0.05` would be errors per second). SlowResponse's quantile
    must be taken over the histogram's bucket rates.
    """
    err_win = spec.error_rate_window
    slow_win = spec.slow_window
    return {
        "groups": [
            {
                "name": "llm_alerts",
                "rules": [
                    {
                        "alert": "HighErrorRate",
                        "expr": (
                            f'sum(rate(llm_requests_total{{status="error"}}[{err_win}]))'
                            f" / sum(rate(llm_requests_total[{err_win}]))"
                            f" > {spec.error_rate_threshold:g}"
                        ),
                        "for": spec.error_rate_for,
                        "labels": {"severity": "critical"},
                        "annotations": {
                            "summary": (
                                f"High error rate (>{spec.error_rate_threshold * 100:g}%)"
                                " in LLM service"
                            )
                        },
                    },
                    {
                        "alert": "SlowResponse",
                        "expr": (
                            "histogram_quantile(0.95, sum by (le) "
                            f"(rate(llm_request_duration_seconds_bucket[{slow_win}])))"
                            f" > {spec.slow_p95_seconds:g}"
                        ),
                        "for": spec.slow_for,
                        "labels": {"severity": "warning"},
                        "annotations": {
                            "summary": f"95th percentile latency > {spec.slow_p95_seconds:g}s"
                        },
                    },
                    {
                        "alert": "GPUMemoryHigh",
                        "expr": (
                            "llm_gpu_memory_used / llm_gpu_memory_total"
                            f" > {spec.gpu_memory_ratio:g}"
                        ),
                        "for": spec.gpu_memory_for,
                        "labels": {"severity": "warning"},
                        "annotations": {
                            "summary": f"GPU memory usage >{spec.gpu_memory_ratio * 100:g}%"
                        },
                    },
                ],
            }
        ]
    }


LIVE_RULES_GLOB = "alerts-live-*.yml"


def to_yaml(data: Mapping[str, Any]) -> str:
    return yaml.safe_dump(dict(data), sort_keys=False, width=120)


@dataclass(frozen=True)
class ScrapeTarget:
    job: str
    address: str  # host:port
    labels: Mapping[str, str]
    metrics_path: str = "/metrics"


def prometheus_config(
    spec: PrometheusSpec,
    *,
    rules_file: Path,
    alertmanager_address: str,
    targets: Sequence[ScrapeTarget],
) -> dict[str, Any]:
    jobs: dict[tuple[str, str], list[ScrapeTarget]] = {}
    for t in targets:
        jobs.setdefault((t.job, t.metrics_path), []).append(t)
    scrape_configs = [
        {
            "job_name": job,
            "metrics_path": path,
            "static_configs": [{"targets": [t.address], "labels": dict(t.labels)} for t in group],
        }
        for (job, path), group in jobs.items()
    ]
    return {
        "global": {
            "scrape_interval": f"{spec.scrape_interval_s:g}s",
            "scrape_timeout": f"{min(spec.scrape_interval_s, 10):g}s",
            "evaluation_interval": f"{spec.evaluation_interval_s:g}s",
        },
        # The glob picks up rules added while the stack runs (the gate's live alert check) on a
        # reload; it matches nothing otherwise.
        "rule_files": [str(rules_file), str(rules_file.parent / LIVE_RULES_GLOB)],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [alertmanager_address]}]}]},
        "scrape_configs": scrape_configs,
    }


@dataclass(frozen=True)
class PrometheusSetup:
    """What a stack's prometheus.yml is rendered from, kept so that it can be rendered again with
    more targets (a rollout's candidate scraped by the baseline's Prometheus)."""

    spec: PrometheusSpec
    rules_file: Path
    alertmanager_address: str
    config: Path

    def render(self, targets: Sequence[ScrapeTarget]) -> str:
        return to_yaml(
            prometheus_config(
                self.spec,
                rules_file=self.rules_file,
                alertmanager_address=self.alertmanager_address,
                targets=targets,
            )
        )


def alertmanager_config(spec: AlertmanagerSpec, *, webhook_url: str) -> dict[str, Any]:
    return {
        "route": {
            "receiver": "harness",
            "group_by": ["alertname"],
            "group_wait": f"{spec.group_wait_s:g}s",
            "group_interval": f"{spec.group_interval_s:g}s",
            "repeat_interval": spec.repeat_interval,
        },
        "receivers": [
            {
                "name": "harness",
                "webhook_configs": [{"url": webhook_url, "send_resolved": True}],
            }
        ],
    }
