"""The log hygiene checks, judged on lines read from the log store.

- every error answer has a gateway line with its request id, its status and a reason;
- no unhandled exception was logged during the load step;
- no API key and no planted PII value appears in any stored line.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from harness.observe.logs import LogLine
from harness.verdict.checks import CheckResult

CATEGORY = "logging"
ERRORS_LOGGED = "error answers logged with request id and reason"
NO_EXCEPTIONS = "no unhandled exception logged"
NO_SECRETS = "no API key or prompt PII in the logs"
SHOWN = 5  # reasons listed per check; the count says how many more


@dataclass(frozen=True)
class ErrorAnswer:
    request_id: str
    status: int
    source: str  # "probe", "load", "experiment ..."


def _more(items: list[str]) -> list[str]:
    extra = len(items) - SHOWN
    return items[:SHOWN] + ([f"... and {extra} more"] if extra > 0 else [])


def judge_error_lines(
    answers: Sequence[ErrorAnswer], lines: Mapping[str, list[LogLine]]
) -> CheckResult:
    failures: list[str] = []
    for a in answers:
        gw = [x for x in lines.get(a.request_id, []) if x.layer == "gateway"]
        if not gw:
            failures.append(
                f"{a.source} request {a.request_id} answered {a.status}: "
                "no gateway log line with its request id"
            )
            continue
        line = gw[-1].fields
        if not line.get("error"):
            failures.append(
                f"{a.source} request {a.request_id} answered {a.status}: "
                "its gateway line gives no reason (field `error`)"
            )
        elif line.get("status") != str(a.status):
            failures.append(
                f"{a.source} request {a.request_id} answered {a.status}: "
                f"its gateway line says status {line.get('status')}"
            )
    return CheckResult.from_reasons(
        ERRORS_LOGGED,
        CATEGORY,
        _more(failures),
        {"error_answers": len(answers), "unlogged_or_unexplained": len(failures)},
        f"each of {len(answers)} error answers has a gateway line with its id, status and reason",
    )


def is_unhandled(row: Mapping[str, Any]) -> bool:
    """A line that records an exception the code did not handle: a traceback attached (the
    gateway's catch-all, or uvicorn's "Exception in ASGI application")."""
    return bool(row.get("exception_type") or row.get("exception"))


def judge_exceptions(rows: Sequence[Mapping[str, Any]], window: str) -> CheckResult:
    found = [r for r in rows if is_unhandled(r)]
    failures = [
        f"{r.get('_time', '?')} {r.get('layer', '?')} {r.get('replica', '')}: "
        f"{r.get('exception_type', '?')} ({r.get('_msg') or r.get('msg', '')}), "
        f"request {r.get('request_id', 'unknown')}"
        for r in found
    ]
    return CheckResult.from_reasons(
        NO_EXCEPTIONS,
        CATEGORY,
        _more(failures),
        {"lines_read": len(rows), "unhandled": len(found), "window": window},
        f"no traceback in {len(rows)} error-level lines"
        + (" of the load step" if window != "*" else " of the run"),
    )


def judge_secrets(rows: Sequence[Mapping[str, Any]], secrets: Mapping[str, str]) -> CheckResult:
    """`secrets` maps what a value is ("API key sk-h...", "planted email") to the value."""
    failures: list[str] = []
    hits = 0
    for row in rows:
        text = json.dumps(row, ensure_ascii=False)
        for what, value in secrets.items():
            if value and value in text:
                hits += 1
                where = f"{row.get('layer', '?')} line at {row.get('_time', '?')}"
                failures.append(f"{what} in a {where} (request {row.get('request_id', '?')})")
    return CheckResult.from_reasons(
        NO_SECRETS,
        CATEGORY,
        _more(failures),
        {"lines_read": len(rows), "values_searched": len(secrets), "lines_with_secrets": hits},
        f"none of {len(secrets)} keys and planted PII values in {len(rows)} stored lines",
    )


def redact(value: str) -> str:
    """How a secret is named in a reason: enough to recognise, not enough to use."""
    return value[:6] + "..." if len(value) > 8 else "***"
