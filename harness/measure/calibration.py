"""A calibration's figures, and latency SLOs written relative to them (`ttft_p95_ms<=6x`).

Measured by `harness/gate/calibrate.py`; kept in the report so a verdict can be read with the speed
of the machine it ran on.
"""

from __future__ import annotations

from pydantic import BaseModel

from harness.spec.slo import RELATIVE, is_relative

__all__ = ["Calibration", "is_relative", "resolve"]


class Calibration(BaseModel):
    """Medians of one-at-a-time requests to the pinned llama.cpp build and model."""

    server: str
    model: str
    threads: int
    requests: int
    prompt_words: int
    max_tokens: int
    ttft_ms: float
    itl_ms: float
    e2e_ms: float
    duration_s: float
    # When the gate measured it, the stack idle both times: first, or during the breaker probe's
    # recovery wait.
    measured_during: str = "before the probes"

    def base(self, dist: str) -> float:
        return {"ttft": self.ttft_ms, "itl": self.itl_ms, "tpot": self.itl_ms, "e2e": self.e2e_ms}[
            dist
        ]


def resolve(expr: str, calibration: Calibration | None) -> str:
    """An absolute SLO for a relative one (`ttft_p95_ms<=6x` -> `ttft_p95_ms<=1320`)."""
    m = RELATIVE.match(expr)
    if m is None:
        return expr
    if calibration is None:
        raise ValueError(f"{expr!r} is relative to a calibration, and none was measured")
    limit = float(m.group("factor")) * calibration.base(m.group("dist"))
    return f"{m.group('dist')}_{m.group('stat')}_ms{m.group('op')}{limit:.1f}"
