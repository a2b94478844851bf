"""The log store in the gate: evidence for failed requests, and the log hygiene checks.

Evidence: every failed, degraded or fallback request of the load step or an experiment (up to
`EVIDENCE_CAP` each) with its lines from each layer, read from the store by request id and
attached to the first check of that step that did not pass (or to its first check when all
passed). An experiment's requests are placed by phase: each names its phase and the checks that
read it, and goes under the first of those that did not pass (else the first of them).
The checks are judged in `harness/verdict/logs.py`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from harness.data.samples import Sample, read_samples
from harness.measure.fates import request_id
from harness.observe.logs import LogLine, LogStore, RequestEvidence, time_filter
from harness.probes.logs import send_error_requests
from harness.probes.pii import SENT
from harness.verdict.checks import CheckResult
from harness.verdict.logs import (
    ErrorAnswer,
    judge_error_lines,
    judge_exceptions,
    judge_secrets,
    redact,
)

EVIDENCE_CAP = 20
# vlagent stamps a model server's line when it reads the file, up to about 1 s after it was written.
MODEL_LAG_S = 1.0
ERROR_ANSWERS_CAP = 200  # load-step error answers looked up by the log check (plus the probes')
STORE_LINES_CAP = 100_000  # lines scanned for keys and PII


def samples_under(root: Path) -> list[Sample]:
    """Every sample of a step (one look or several) under its output folder."""
    if not root.is_dir():
        return []
    out: list[Sample] = []
    for d in sorted(p for p in root.rglob("samples") if p.is_dir()):
        out += read_samples(d)
    return out


def what_went_wrong(s: Sample) -> str | None:
    """Why a request is evidence: failed, degraded or answered by the fallback pool."""
    if s.error is not None:
        return f"error: {s.error}" + (f" (status {s.status})" if s.status else "")
    if s.status >= 400:
        return f"status {s.status}"
    if s.x_served_by in ("degraded", "fallback"):
        return "degraded" if s.x_served_by == "degraded" else "served by the fallback pool"
    return None


def collect_evidence(
    store: LogStore,
    samples: Sequence[Sample],
    cap: int = EVIDENCE_CAP,
    phases: Mapping[str, str] | None = None,
    readers: Mapping[str, Sequence[str]] | None = None,
) -> list[RequestEvidence]:
    """`phases`: an experiment's phase of each request by client request id; `readers`: the
    checks that read each phase's requests."""
    picked = [(s, why) for s in samples if (why := what_went_wrong(s)) is not None][:cap]
    if not picked:
        return []
    store.settle(MODEL_LAG_S)  # the last requests' model-server lines are read and stored
    lines = store.lines_of([request_id(s) for s, _ in picked])
    return [
        RequestEvidence(
            request_id=request_id(s),
            status=s.status,
            outcome=why,
            lines=sorted(
                lines.get(request_id(s), []) + store.model_lines(s.sent_s, s.done_s + MODEL_LAG_S),
                key=_when,
            ),
            phase=(phase := (phases or {}).get(s.client_request_id)),
            checks=list((readers or {}).get(phase or "", [])),
        )
        for s, why in picked
    ]


def _when(line: LogLine) -> str:
    """RFC 3339 times in order, whatever the number of fraction digits the store printed."""
    head, _, frac = line.time.rstrip("Z").partition(".")
    return f"{head}.{frac:0<9}"


def attach(evidence: list[RequestEvidence], checks: Sequence[CheckResult]) -> None:
    """Each request once, under the first check that read it and did not pass, else the first
    that read it (a request naming no check was read by all of the step's checks)."""
    if not checks:
        return
    for ev in evidence:
        readers = [c for c in checks if c.name in ev.checks] or list(checks)
        failing = [c for c in readers if c.outcome not in ("pass", "skipped")]
        (failing or readers)[0].evidence.append(ev)


def error_answers(samples: Sequence[Sample], source: str) -> list[ErrorAnswer]:
    return [ErrorAnswer(request_id(s), s.status, source) for s in samples if s.status >= 400]


def log_checks(
    store: LogStore,
    nginx: str,
    api_key: str,
    api_keys: Sequence[str],
    load_samples: Sequence[Sample],
) -> list[CheckResult]:
    """The three hygiene checks; about four store queries and three requests."""
    answers = send_error_requests(nginx, api_key)
    answers += error_answers(load_samples, "load")[:ERROR_ANSWERS_CAP]
    store.settle()
    lines = store.lines_of([a.request_id for a in answers], limit=20 * len(answers) + 100)
    checks = [judge_error_lines(answers, lines)]

    # The load step's window; the whole run when the gate has no load step.
    window = "*"
    if load_samples:
        window = time_filter(
            min(s.sent_s for s in load_samples) - 1, max(s.done_s for s in load_samples) + 1
        )
    rows = store.query(f"{window} level:in(error,critical)", limit=STORE_LINES_CAP)
    checks.append(judge_exceptions(rows, window))

    secrets = {f"API key {redact(k)}": k for k in api_keys}
    secrets |= SENT
    rows = store.query("*", limit=STORE_LINES_CAP)
    checks.append(judge_secrets(rows, secrets))
    return checks
