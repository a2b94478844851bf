"""The report's `workload` section, for the opt-in workloads (dataset, sessions, shared prefix,
trace, tokenizer): the prompt and output token distributions actually sent and served, TTFT turn by
turn and with or without a shared prefix, and the prefix cache as the server saw it.

Prefix-cache figures, side by side:
- per request, what the server said it took from its cache (`cached_tokens`: llama.cpp's
  `timings.cache_n`, vLLM's `usage.prompt_tokens_details.cached_tokens`);
- from the model server's own `/metrics`, read before and after the run: vLLM's
  `vllm:prefix_cache_hits_total / vllm:prefix_cache_queries_total`, and llama.cpp's
  `llamacpp:prompt_tokens_total` (the prompt tokens it evaluated: the served prompt tokens
  minus these were reused from its cache). Other traffic to that server in the window counts too.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import httpx
from prometheus_client.parser import text_string_to_metric_families
from pydantic import BaseModel, ConfigDict

from harness.clients.http import http_get
from harness.data.samples import Sample
from harness.measure.stats import Distribution, distribution
from harness.spec.load import LoadSpec, OpenLoop

COUNTERS = (
    "vllm:prefix_cache_hits_total",
    "vllm:prefix_cache_queries_total",
    "llamacpp:prompt_tokens_total",
)


class GroupRow(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str  # "turn 2", "shared prefix", "no prefix"
    ttft_ms: Distribution
    prompt_tokens: Distribution  # served (usage.prompt_tokens)
    cached_tokens: Distribution  # per request, as the server reported them


class ServerCache(BaseModel):
    """Counter increases on the model server over the run (None: not exported there)."""

    model_config = ConfigDict(extra="ignore")
    url: str
    deltas: dict[str, float | None]
    hit_rate: float | None = None  # vLLM: hits / queries (tokens)
    # llama.cpp: evaluated / served prompt tokens (only when every request succeeded)
    evaluated_share: float | None = None


class WorkloadView(BaseModel):
    model_config = ConfigDict(extra="ignore")
    prompt_tokens_planned: Distribution  # what the harness meant to send (trace / tokenizer)
    prompt_tokens_served: Distribution  # the server's usage.prompt_tokens
    output_tokens_served: Distribution  # the server's usage.completion_tokens
    cached_share: float | None  # sum(cached_tokens) / sum(prompt_tokens), requests reporting both
    groups: list[GroupRow]
    server_cache: ServerCache | None = None


def opted_in(spec: LoadSpec) -> bool:
    w = spec.workload
    trace = isinstance(spec.load, OpenLoop) and spec.load.trace is not None
    return (
        trace or w.tokenizer or any(x is not None for x in (w.dataset, w.sessions, w.shared_prefix))
    )


def _row(name: str, samples: Sequence[Sample]) -> GroupRow:
    return GroupRow(
        name=name,
        ttft_ms=distribution([s.ttft_ms for s in samples if s.ttft_ms is not None]),
        prompt_tokens=distribution(
            [s.prompt_tokens for s in samples if s.prompt_tokens is not None]
        ),
        cached_tokens=distribution(
            [s.cached_tokens for s in samples if s.cached_tokens is not None]
        ),
    )


def build_view(samples: Sequence[Sample], server_cache: ServerCache | None = None) -> WorkloadView:
    ok = [s for s in samples if s.ok]
    both = [s for s in ok if s.cached_tokens is not None and s.prompt_tokens]
    served = sum(s.prompt_tokens or 0 for s in both)
    groups: list[GroupRow] = []
    by_turn: dict[int, list[Sample]] = defaultdict(list)
    for s in ok:
        if s.turn is not None:
            by_turn[s.turn].append(s)
    groups += [_row(f"turn {t}", by_turn[t]) for t in sorted(by_turn)]
    if any(s.prefix_group is not None for s in ok):
        groups.append(_row("shared prefix", [s for s in ok if s.prefix_group is not None]))
        groups.append(_row("no prefix", [s for s in ok if s.prefix_group is None]))
    if server_cache is not None:
        d = server_cache.deltas
        hits, queries = d.get(COUNTERS[0]), d.get(COUNTERS[1])
        if hits is not None and queries:
            server_cache.hit_rate = hits / queries
        evaluated = d.get(COUNTERS[2])
        total = sum(s.prompt_tokens or 0 for s in ok)
        # Failed requests were evaluated too, but their prompt sizes are not known: no share then.
        if evaluated is not None and total and len(ok) == len(samples):
            server_cache.evaluated_share = evaluated / total
    return WorkloadView(
        prompt_tokens_planned=distribution([s.planned_tokens for s in ok if s.planned_tokens]),
        prompt_tokens_served=distribution([s.prompt_tokens for s in ok if s.prompt_tokens]),
        output_tokens_served=distribution([s.output_tokens for s in ok if s.output_tokens]),
        cached_share=sum(s.cached_tokens or 0 for s in both) / served if served else None,
        groups=groups,
        server_cache=server_cache,
    )


def read_counters(url: str, timeout_s: float = 5.0) -> dict[str, float] | None:
    """The COUNTERS a model server's /metrics exports (summed over labels); None when unreadable."""
    try:
        r = http_get(f"{url.rstrip('/')}/metrics", timeout=timeout_s)
        r.raise_for_status()
        families = list(text_string_to_metric_families(r.text))
    except (httpx.HTTPError, ValueError):
        return None
    out: dict[str, float] = {}
    for fam in families:
        for s in fam.samples:
            if s.name in COUNTERS:
                out[s.name] = out.get(s.name, 0.0) + float(s.value)
    return out


def counter_deltas(
    url: str, before: dict[str, float] | None, after: dict[str, float] | None
) -> ServerCache | None:
    if before is None or after is None:
        return None
    deltas = {k: (after[k] - before[k]) if k in after and k in before else None for k in COUNTERS}
    return ServerCache(url=url, deltas=deltas)


def _d(d: Distribution, ms: bool = False) -> str:
    if not d.count:
        return "-"
    unit = " ms" if ms else ""
    return f"p50 {d.p50:.0f} p95 {d.p95:.0f} max {d.max:.0f}{unit} (n={d.count})"


def _n(v: float | None) -> str:
    return "-" if v is None else f"{v:.0f}"


def render_view(v: WorkloadView) -> list[str]:
    lines = [
        "  workload tokens:",
        f"    prompt planned  {_d(v.prompt_tokens_planned)}",
        f"    prompt served   {_d(v.prompt_tokens_served)}",
        f"    output served   {_d(v.output_tokens_served)}",
    ]
    if v.cached_share is not None:
        lines.append(f"    prompt tokens the server reported cached: {v.cached_share:.1%}")
    for g in v.groups:
        lines.append(
            f"    {g.name:<14} ttft {_d(g.ttft_ms, ms=True)}; prompt tokens p50 "
            f"{_n(g.prompt_tokens.p50)}, cached p50 {_n(g.cached_tokens.p50)}"
        )
    sc = v.server_cache
    if sc is not None:
        shown = ", ".join(f"{k} +{x:g}" for k, x in sc.deltas.items() if x is not None) or "none"
        lines.append(f"    server {sc.url}/metrics over the run: {shown}")
        if sc.hit_rate is not None:
            lines.append(f"    server prefix cache hit rate {sc.hit_rate:.1%}")
        if sc.evaluated_share is not None:
            lines.append(
                f"    server evaluated {sc.evaluated_share:.1%} of the served prompt tokens "
                f"(the rest came from its cache)"
            )
    return lines
