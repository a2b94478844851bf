"""How sure each judged figure is: the rows both renderings show for SLOs and shares judged with
confidence bounds, and the calibration the relative SLOs rest on."""

from __future__ import annotations

from harness.report.model import RunReport

CONFIDENCE_COLUMNS = ("check", "decision", "n", "estimate", "lower bound", "upper bound", "looks")


def _num(v: object) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return "-" if v is None else str(v)


def confidence_rows(report: RunReport) -> list[tuple[str, ...]]:
    return [
        (
            c.name,
            str(c.measured["decision"]),
            *(_num(c.measured.get(k)) for k in ("n", "estimate", "lower", "upper", "looks")),
        )
        for c in report.checks
        if "decision" in c.measured and "n" in c.measured
    ]


def calibration_line(report: RunReport) -> str | None:
    c = report.calibration
    if c is None:
        return None
    return (
        f"calibration ({c.model}, 1 thread, {c.requests} requests one at a time, "
        f"{c.prompt_words}-word prompts, {c.max_tokens} tokens): TTFT {c.ttft_ms} ms, "
        f"ITL {c.itl_ms} ms, e2e {c.e2e_ms} ms (medians), measured {c.measured_during}"
    )
