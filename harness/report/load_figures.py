"""The figures of a load run a person reads first, from the load report stored in a RunReport."""

from __future__ import annotations

from harness.load.report import LoadReport, goodput_line
from harness.measure.stats import Distribution
from harness.measure.timeseries import SecondBucket


def _ms(dist: Distribution | None) -> str:
    if dist is None or not dist.count:
        return "n/a"
    return " / ".join(
        f"{v:.0f}" if (v := getattr(dist, k)) is not None else "-"
        for k in ("p50", "p90", "p95", "p99")
    )


def _pct(x: float | None) -> str:
    return f"{x * 100:.1f}%" if x is not None else "n/a"


def _num(x: float | None, fmt: str = ".2f") -> str:
    return format(x, fmt) if x is not None else "n/a"


def load_highlights(load: LoadReport | None) -> list[tuple[str, str]]:
    """(label, value) rows: latency percentiles in ms, rates, errors, how requests were served."""
    if load is None:
        return []
    summary = load.summary
    lat, counts, tp = summary.latency, summary.counts, summary.throughput
    gen, served, validity = summary.generator, summary.served, summary.validity
    rows = [
        ("outcome", load.outcome),
        ("requests (ok / errors)", f"{counts.total} ({counts.ok} / {counts.errors})"),
        ("error rate", _pct(counts.error_rate)),
        ("errors by status", str(counts.by_status or {})),
        (
            f"requests/s over the {summary.window.duration_s:g} s schedule window: offered / sent "
            "/ achieved",
            " / ".join(
                _num(v) for v in (gen.offered_rate_rps, gen.sent_rate_rps, gen.achieved_rate_rps)
            ),
        ),
        ("achieved / sent (achieved_ratio)", _pct(gen.achieved_ratio)),
        (
            "finished after the window (drain)",
            f"{gen.completed_after_window} requests in {gen.drain_s:.1f} s",
        ),
        ("output tokens/s", _num(tp.output_tokens_per_second, ".1f")),
        ("TTFT ms p50/p90/p95/p99", _ms(lat.ttft_ms)),
        ("inter-token ms per request p50/p90/p95/p99", _ms(lat.itl_ms)),
        ("token gaps ms, pooled, p50/p90/p95/p99", _ms(lat.token_gap_ms)),
        ("time per output token ms p50/p90/p95/p99", _ms(lat.tpot_ms)),
        ("end-to-end ms p50/p90/p95/p99", _ms(lat.e2e_ms)),
    ]
    if lat.e2e_from_intended_ms is not None:
        rows.append(("end-to-end from intended send ms", _ms(lat.e2e_from_intended_ms)))
    rows += [
        ("generator send lag ms p50/p90/p95/p99", _ms(gen.send_lag_ms)),
        (
            "served primary / fallback / cache / degraded",
            " / ".join(
                _pct(v)
                for v in (
                    served.primary_share,
                    served.fallback_share,
                    served.cache_share,
                    served.degraded_share,
                )
            ),
        ),
        ("cache hit rate", _pct(summary.cache.hit_rate)),
        ("goodput (requests meeting every per-request SLO)", goodput_line(summary)),
        ("run valid", "yes" if validity.valid else "NO: " + "; ".join(validity.reasons)),
    ]
    return rows


def load_timeseries(load: LoadReport | None) -> list[SecondBucket]:
    return load.summary.timeseries if load is not None else []
