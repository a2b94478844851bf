"""The figures of a load run a person reads first, from the load report stored in a RunReport."""

from __future__ import annotations

from typing import Any


def _get(d: Any, *path: str) -> Any:
    for p in path:
        if not isinstance(d, dict):
            return None
        d = d.get(p)
    return d


def _ms(dist: Any) -> str:
    if not isinstance(dist, dict) or not dist.get("count"):
        return "n/a"
    return " / ".join(
        f"{dist[k]:.0f}" if isinstance(dist.get(k), (int, float)) else "-"
        for k in ("p50", "p90", "p95", "p99")
    )


def _pct(x: Any) -> str:
    return f"{x * 100:.1f}%" if isinstance(x, (int, float)) else "n/a"


def _num(x: Any, fmt: str = ".2f") -> str:
    return format(x, fmt) if isinstance(x, (int, float)) else "n/a"


def load_highlights(load: dict[str, Any] | None) -> list[tuple[str, str]]:
    """(label, value) rows: latency percentiles in ms, rates, errors, how requests were served."""
    summary = _get(load, "summary")
    if not isinstance(summary, dict):
        return []
    lat = summary.get("latency") or {}
    counts = summary.get("counts") or {}
    tp = summary.get("throughput") or {}
    gen = summary.get("generator") or {}
    served = summary.get("served") or {}
    validity = summary.get("validity") or {}
    rows = [
        ("outcome", str(_get(load, "outcome"))),
        ("requests (ok / errors)",
         f"{counts.get('total')} ({counts.get('ok')} / {counts.get('errors')})"),
        ("error rate", _pct(counts.get("error_rate"))),
        ("errors by status", str(counts.get("by_status") or {})),
        ("requests/s achieved (offered)",
         f"{_num(gen.get('achieved_rate_rps'))} ({_num(gen.get('offered_rate_rps'))})"),
        ("output tokens/s", _num(tp.get("output_tokens_per_second"), ".1f")),
        ("TTFT ms p50/p90/p95/p99", _ms(lat.get("ttft_ms"))),
        ("inter-token ms per request p50/p90/p95/p99", _ms(lat.get("itl_ms"))),
        ("token gaps ms, pooled, p50/p90/p95/p99", _ms(lat.get("token_gap_ms"))),
        ("time per output token ms p50/p90/p95/p99", _ms(lat.get("tpot_ms"))),
        ("end-to-end ms p50/p90/p95/p99", _ms(lat.get("e2e_ms"))),
    ]  # fmt: skip
    if lat.get("e2e_from_intended_ms"):
        rows.append(("end-to-end from intended send ms", _ms(lat.get("e2e_from_intended_ms"))))
    rows += [
        ("generator send lag ms p50/p90/p95/p99", _ms(gen.get("send_lag_ms"))),
        ("served primary / fallback / cache / degraded", " / ".join(
            _pct(served.get(k)) for k in ("primary_share", "fallback_share", "cache_share",
                                          "degraded_share"))),
        ("cache hit rate", _pct(_get(summary, "cache", "hit_rate"))),
        ("goodput", _pct(_get(summary, "goodput", "share"))),
        ("run valid",
         "yes" if validity.get("valid") else "NO: " + "; ".join(validity.get("reasons") or [])),
    ]  # fmt: skip
    return rows


def load_timeseries(load: dict[str, Any] | None) -> list[dict[str, Any]]:
    rows = _get(load, "summary", "timeseries")
    return rows if isinstance(rows, list) else []
