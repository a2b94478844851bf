"""SLO expressions such as ``ttft_p95_ms<=500`` (aggregate) or ``ttft_ms<=500`` (per request).

An aggregate SLO is judged once on the run's samples and summary (`harness/verdict/slo.py`). A
per-request SLO is checked against every request; the share of successful requests meeting all of
them is the run's goodput.

`itl` is inter-token latency per request as guidellm defines it ((last token - first token) /
(tokens - 1)), `token_gap` every gap between streamed chunks, pooled over all requests; the
README's "Latency definitions" says where each clock starts and stops.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

# Latency distributions in the summary, each with these statistics.
DISTRIBUTIONS = (
    "ttft",
    "itl",
    "token_gap",
    "tpot",
    "e2e",
    "ttft_from_intended",
    "e2e_from_intended",
    "send_lag",
)
STATS = ("p50", "p90", "p95", "p99", "mean", "min", "max")
# Scalar figures of the summary (shares are 0..1).
SCALARS = (
    "error_rate",
    "achieved_ratio",  # open loop: achieved / sent rate, both over the schedule window
    "requests_per_second",
    "output_tokens_per_second",
    "goodput",
    "goodput_requests_per_second",
    "cache_hit_rate",
    "primary_share",
    "fallback_share",
    "cache_share",
    "degraded_share",
    "incomplete_share",  # streams cut short, broken off or stalled past the request timeout
    "rate_limited_share",  # requests answered 429
)
# Per-request figures a goodput SLO can name.
PER_REQUEST = (
    "ttft_ms",
    "e2e_ms",
    "tpot_ms",
    "itl_ms",
    "token_gap_max_ms",
    "ttft_from_intended_ms",
    "e2e_from_intended_ms",
)
# Older names still accepted: `itl_max_ms` was the largest gap of a request.
ALIASES = {"itl_max_ms": "token_gap_max_ms"}

# Checked on every run unless turned off (`harness load --no-default-checks`); an SLO the user
# gives on the same figure replaces the default. (expression, why a user assumes it)
DEFAULT_CHECKS = (
    ("error_rate<=0.01", "a run with errors is not a pass"),
    ("achieved_ratio>=0.9", "the server kept up with the offered rate"),
)
# Below this many requests one late completion moves achieved_ratio by more than 0.1.
MIN_SENT_FOR_ACHIEVED_CHECK = 20

_OPS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    "<": operator.lt,
    ">=": operator.ge,
    ">": operator.gt,
}
_EXPR = re.compile(r"^\s*([a-z0-9_]+)\s*(<=|>=|<|>)\s*(-?\d+(?:\.\d+)?(?:e-?\d+)?)\s*$")


def aggregate_metric_names() -> list[str]:
    return [f"{d}_{s}_ms" for d in DISTRIBUTIONS for s in STATS] + list(SCALARS)


@dataclass(frozen=True)
class Slo:
    metric: str
    op: str
    threshold: float
    scope: Literal["aggregate", "request"]

    @property
    def expr(self) -> str:
        return f"{self.metric}{self.op}{self.threshold:g}"

    def holds(self, value: float) -> bool:
        return _OPS[self.op](value, self.threshold)


def parse_slo(text: str) -> Slo:
    """Parse one expression; ValueError says what is wrong and lists valid names."""
    m = _EXPR.match(text)
    if not m:
        raise ValueError(
            f"cannot parse SLO {text!r}: expected NAME OP NUMBER with OP one of <=, <, >=, >, "
            "e.g. 'ttft_p95_ms<=500' or 'ttft_ms<=500'"
        )
    name, op, num = m.group(1), m.group(2), float(m.group(3))
    name = ALIASES.get(name, name)
    if name in PER_REQUEST:
        return Slo(name, op, num, "request")
    if name in aggregate_metric_names():
        return Slo(name, op, num, "aggregate")
    raise ValueError(
        f"unknown SLO metric {name!r}: per request {', '.join(PER_REQUEST)}; aggregate "
        f"<{'|'.join(DISTRIBUTIONS)}>_<{'|'.join(STATS)}>_ms or {', '.join(SCALARS)}"
    )


def parse_slos(texts: tuple[str, ...] | list[str]) -> list[Slo]:
    return [parse_slo(t) for t in texts]


# `ttft_p95_ms<=6x`: a latency SLO as a multiple of the calibrated median of the same figure.
RELATIVE = re.compile(
    r"^\s*(?P<dist>ttft|itl|tpot|e2e)_(?P<stat>p\d{2}|mean|max)_ms\s*(?P<op><=|<)\s*"
    r"(?P<factor>\d+(?:\.\d+)?)x\s*$"
)


def is_relative(expr: str) -> bool:
    return RELATIVE.match(expr) is not None


# Aggregate figures whose per-request value a goodput SLO can bound, and the stats a per-request
# bound follows from, tail first: `max` bounds every request, a high percentile nearly every one.
_DERIVABLE = ("ttft", "itl", "tpot", "e2e", "ttft_from_intended", "e2e_from_intended")
_TAIL_FIRST = ("max", "p99", "p95", "p90")


def derived_per_request(slos: list[Slo]) -> list[tuple[Slo, Slo]]:
    """Per-request SLOs from aggregate latency SLOs, for a run that names none: for each figure,
    the bound of its tail-most SLO (max, else the highest of p99/p95/p90) applied to every request
    (`ttft_p95_ms<=500` -> `ttft_ms<=500`), as DistServe's SLO attainment counts the requests
    within a per-request bound. (per-request SLO, the aggregate it came from) pairs; a median or
    mean bounds no single request and derives nothing."""
    out: list[tuple[Slo, Slo]] = []
    for dist in _DERIVABLE:
        upper = {
            s.metric.removeprefix(f"{dist}_").removesuffix("_ms"): s
            for s in slos
            if s.scope == "aggregate" and s.op in ("<=", "<") and s.metric.startswith(f"{dist}_")
        }
        tail = next((upper[stat] for stat in _TAIL_FIRST if stat in upper), None)
        if tail is not None:
            out.append((Slo(f"{dist}_ms", tail.op, tail.threshold, "request"), tail))
    return out
