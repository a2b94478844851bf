"""Where the time to first token went, request by request (docs/latency.md, "Where the time goes").

Every part of a request's TTFT comes from a record of that request, each on one clock:

    client TTFT = gateway + server queue + server prefill + gateway <-> server rest
                  + first event -> first text + unexplained

- gateway: the gateway's own time up to its headers (`Server-Timing: gw`);
- server queue and prefill: the model server's own time before its first token; per request
  where its answer says so (llama.cpp's `timings.prompt_ms`; it reports no queue), else the
  mean of its Prometheus histograms over the run window (vLLM and its simulator: estimates,
  not per request; `server_timings.py`);
- gateway <-> server rest: the gateway's wait on the model server (`Server-Timing: upstream`)
  less the server's own part: transport (Toxiproxy, loopback), the server's HTTP layer, a
  queue it does not report;
- first event -> first text (client clock): events before the first text, a role-only chunk or
  a first delta the gateway's PII filter held until the next one: the model's next token;
- unexplained: the rest of the client's TTFT, measured by nobody: nginx, the network, the
  client, and anything that held the answer's first event back after its headers.

The stacked figure at p50 (p95) is the mean of each part over the requests whose TTFT ranks
within `BAND_POINTS` percentile points of it, so its parts add up to those requests' TTFT. The
gap a check reads is per request: TTFT - gateway - server - first event -> first text, the part
the gateway and the server do not account for (the two derived parts together).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from harness.data.samples import Sample
from harness.measure.stats import Distribution, distribution

# The requests around a percentile whose parts are averaged: ranks within this many points.
BAND_POINTS = 2.5

PART_LABELS: dict[str, str] = {
    "gateway_ms": "gateway, own time",
    "server_queue_ms": "model server queue",
    "server_prefill_ms": "model server prefill",
    "upstream_rest_ms": "gateway <-> model server, rest",
    "first_text_wait_ms": "first event -> first text",
    "unexplained_ms": "unexplained (nginx, network, client)",
}
ServerSource = Literal["per request", "histogram mean", "not reported"]


class ServerMeans(BaseModel):
    """A model-server pool's own time per request, from its histograms over the run window:
    means (each histogram's sum over its count), not per-request figures."""

    model_config = ConfigDict(extra="ignore")
    pool: str | None = None  # the `pool` label; None: every server together
    requests: float = 0.0  # prefills counted in the window (Prometheus extrapolates: not whole)
    queue_ms: float | None = None
    prefill_ms: float | None = None
    decode_ms: float | None = None
    queries: dict[str, str] = Field(default_factory=dict)


class Agreement(BaseModel):
    """Whether the client's TTFT and the server's agree once the gateway's time is counted
    (judged in harness/verdict/breakdown.py)."""

    model_config = ConfigDict(extra="ignore")
    decision: Literal["agree", "warn", "not judged"]
    reason: str
    threshold_ms: float | None = None


class Band(BaseModel):
    """The requests around one TTFT percentile and the mean of each part over them."""

    model_config = ConfigDict(extra="ignore")
    percentile: float
    requests: int
    ttft_ms: float
    parts_ms: dict[str, float]


class TtftBreakdown(BaseModel):
    model_config = ConfigDict(extra="ignore")
    requests: int  # broken down: succeeded, answered by a model server, with the gateway's timing
    left_out: dict[str, int] = Field(default_factory=dict)  # why the others were not
    streamed: bool = True
    # How each broken-down request's server part was known.
    server_source: dict[str, int] = Field(default_factory=dict)
    bands: list[Band] = Field(default_factory=list)
    # Per request: the part nobody measured, and the gap the gateway and server leave (only
    # requests whose server part is known).
    unexplained_ms: Distribution = Field(default_factory=Distribution)
    gap_ms: Distribution = Field(default_factory=Distribution)
    ttft_ms: Distribution = Field(default_factory=Distribution)
    # After the first token: the client's (e2e - TTFT) next to the server's own decode.
    after_first_token_ms: Distribution = Field(default_factory=Distribution)
    itl_ms: Distribution = Field(default_factory=Distribution)  # per request, guidellm's ITL
    server_decode_ms: Distribution = Field(default_factory=Distribution)
    server_means: list[ServerMeans] = Field(default_factory=list)
    server_error: str | None = None  # why the histograms could not be read
    agreement: Agreement | None = None

    def band(self, percentile: float) -> Band | None:
        return next((b for b in self.bands if b.percentile == percentile), None)

    @property
    def queue_unreported(self) -> bool:
        """Some server part came from an answer's own timings, which hold no queue time
        (llama.cpp's)."""
        return bool(self.server_source.get("per request"))

    @property
    def histogram_only(self) -> bool:
        """Every known server part is a histogram estimate (no request carried its own)."""
        return not self.server_source.get("per request") and bool(
            self.server_source.get("histogram mean")
        )


@dataclass(frozen=True)
class RequestParts:
    ttft_ms: float
    parts_ms: dict[str, float]
    server_known: bool
    source: ServerSource

    @property
    def gap_ms(self) -> float:
        return self.parts_ms["upstream_rest_ms"] + self.parts_ms["unexplained_ms"]


def _means_for(sample: Sample, means: Mapping[str | None, ServerMeans]) -> ServerMeans | None:
    """The histogram means of the pool that served this request (X-Served-By names it), else
    those of every server together (servers scraped without a `pool` label)."""
    if sample.x_served_by in means:
        return means[sample.x_served_by]
    return means.get(None)


def request_parts(
    s: Sample, means: Mapping[str | None, ServerMeans], streamed: bool = True
) -> RequestParts | str:
    """This request's parts, or why it cannot be broken down."""
    if not s.ok or s.ttft_ms is None:
        return "failed or no text"
    if s.gateway_ms is None:
        return "no Server-Timing from the gateway"
    if s.upstream_ms is None:
        return "no model-server call (cache hit)"
    if s.first_event_ms is None:
        return "no event"
    queue = prefill = 0.0
    source: ServerSource = "not reported"
    if s.server_prefill_ms is not None:
        prefill, source = s.server_prefill_ms, "per request"
        if not streamed:  # the whole answer was the wait: decode is the server's too
            prefill += s.server_decode_ms or 0.0
    elif (m := _means_for(s, means)) is not None and m.prefill_ms is not None:
        queue, prefill, source = m.queue_ms or 0.0, m.prefill_ms, "histogram mean"
        if not streamed:
            prefill += m.decode_ms or 0.0
    first_text_wait = s.ttft_ms - s.first_event_ms
    measured = s.gateway_ms + s.upstream_ms + first_text_wait
    parts = {
        "gateway_ms": s.gateway_ms,
        "server_queue_ms": queue,
        "server_prefill_ms": prefill,
        "upstream_rest_ms": s.upstream_ms - queue - prefill,
        "first_text_wait_ms": first_text_wait,
        "unexplained_ms": s.ttft_ms - measured,
    }
    return RequestParts(s.ttft_ms, parts, source != "not reported", source)


def _band(rows: Sequence[RequestParts], percentile: float) -> Band:
    """Mean parts of the requests ranked within BAND_POINTS of `percentile` (at least one)."""
    ordered = sorted(rows, key=lambda r: r.ttft_ms)
    n = len(ordered)
    lo = max(0, int(np.ceil((percentile - BAND_POINTS) / 100 * (n - 1))))
    hi = min(n - 1, int(np.floor((percentile + BAND_POINTS) / 100 * (n - 1))))
    chosen = ordered[lo : hi + 1] if hi >= lo else [ordered[round(percentile / 100 * (n - 1))]]
    return Band(
        percentile=percentile,
        requests=len(chosen),
        ttft_ms=float(np.mean([r.ttft_ms for r in chosen])),
        parts_ms={k: float(np.mean([r.parts_ms[k] for r in chosen])) for k in PART_LABELS},
    )


def build_breakdown(
    samples: Sequence[Sample],
    means: Sequence[ServerMeans] = (),
    streamed: bool = True,
) -> TtftBreakdown | None:
    """The breakdown of every request that can be broken down; None when no answer carried the
    gateway's timing (a bare model server, or a gateway that does not send Server-Timing)."""
    by_pool = {m.pool: m for m in means}
    rows: list[RequestParts] = []
    left_out: dict[str, int] = {}
    for s in samples:
        r = request_parts(s, by_pool, streamed)
        if isinstance(r, str):
            left_out[r] = left_out.get(r, 0) + 1
        else:
            rows.append(r)
    if not rows:
        return None
    sources: dict[str, int] = {}
    for r in rows:
        sources[r.source] = sources.get(r.source, 0) + 1
    ok = [s for s in samples if s.ok and s.ttft_ms is not None]
    return TtftBreakdown(
        requests=len(rows),
        left_out=left_out,
        streamed=streamed,
        server_source=sources,
        bands=[_band(rows, 50.0), _band(rows, 95.0)],
        unexplained_ms=distribution([r.parts_ms["unexplained_ms"] for r in rows]),
        gap_ms=distribution([r.gap_ms for r in rows if r.server_known]),
        ttft_ms=distribution([r.ttft_ms for r in rows]),
        after_first_token_ms=distribution(
            [s.e2e_ms - s.ttft_ms for s in ok if s.ttft_ms is not None]
        ),
        server_decode_ms=distribution(
            [s.server_decode_ms for s in ok if s.server_decode_ms is not None]
        ),
        itl_ms=distribution([i for s in ok if (i := s.itl_ms) is not None]),
        server_means=list(means),
    )


def _server_by(b: TtftBreakdown, what: str) -> str:
    if b.histogram_only:
        return f"model server's {what} histogram: mean over the window, not per request"
    if b.server_source.get("per request"):
        return "model server's answer (llama.cpp timings.prompt_ms), per request"
    return "not reported by the model server (inside the rest)"


def breakdown_rows(b: TtftBreakdown) -> list[tuple[str, str, str, str]]:
    """(part, ms at the p50 requests, ms at the p95 requests, measured by) for every part, then
    the client's TTFT they add up to."""
    p50, p95 = b.band(50.0), b.band(95.0)

    def ms(band: Band | None, key: str | None = None) -> str:
        if band is None:
            return "-"
        return f"{band.ttft_ms if key is None else band.parts_ms[key]:.1f}"

    queue_by = (
        _server_by(b, "queue")
        if b.histogram_only
        else "not reported by the model server (inside the rest)"
    )
    by = {
        "gateway_ms": "gateway, Server-Timing gw",
        "server_queue_ms": queue_by,
        "server_prefill_ms": _server_by(b, "prefill"),
        "upstream_rest_ms": "gateway's wait (Server-Timing upstream) less the server's part",
        "first_text_wait_ms": "client: first event -> first text event",
        "unexplained_ms": "client's TTFT less every part above",
    }
    rows = [(label, ms(p50, key), ms(p95, key), by[key]) for key, label in PART_LABELS.items()]
    rows.append(
        (
            "= client TTFT",
            ms(p50),
            ms(p95),
            f"client; requests averaged: {p50.requests if p50 else 0} around p50, "
            f"{p95.requests if p95 else 0} around p95 (of {b.requests})",
        )
    )
    return rows


def decode_line(b: TtftBreakdown) -> str | None:
    """After the first token: the client's e2e - TTFT beside the server's own decode."""
    client = b.after_first_token_ms
    if not client.count or client.p50 is None:
        return None
    line = f"after the first token: client (e2e - TTFT) p50 {client.p50:.1f} ms (n={client.count})"
    own = b.server_decode_ms
    if own.count and own.p50 is not None:
        return line + f"; model server's own decode p50 {own.p50:.1f} ms (n={own.count})"
    means = [m for m in b.server_means if m.decode_ms is not None]
    if means:
        pools = ", ".join(f"{m.pool or 'all'} {m.decode_ms:.1f} ms" for m in means)
        return line + f"; model server's decode histogram mean: {pools}"
    return line
