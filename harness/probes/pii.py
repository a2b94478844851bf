"""PII filtering proven on a live answer: a prompt plants an e-mail address, a phone number and an
SSN and asks for them back; the answer (plain and streamed) must carry the placeholders, never the
values. A model server that echoes (the simulator in echo mode) repeats them every time; a real
model may not, and a kind that never came back is not proven: SKIPPED with that reason, never
passed."""

from __future__ import annotations

import time
from collections.abc import Sequence

import httpx

from harness.probes.http import auth_headers, chat_body, stream_chat, unique_prompt
from harness.verdict.checks import CheckResult, Outcome
from harness.verdict.practices import PLANTED, judge_pii

NAME = "PII filtered from answers"


def _excerpt(text: str, chars: int = 120) -> str:
    """The start of an answer on one line, for the report."""
    flat = " ".join(text.split())
    return flat if len(flat) <= chars else flat[: chars - 3] + "..."


def probe_pii(base_url: str, api_key: str, kinds: Sequence[str]) -> CheckResult:
    t0 = time.monotonic()
    planted = ", ".join(PLANTED[k] for k in kinds)
    prompt = unique_prompt(f"Repeat exactly, nothing else: {planted}")
    body = chat_body(prompt, max_tokens=64, temperature=0)
    with httpx.Client(timeout=60, headers=auth_headers(api_key)) as http:
        r = http.post(f"{base_url}/v1/chat/completions", json=body)
    plain = ""
    if r.status_code == 200:
        plain = (r.json().get("choices") or [{}])[0].get("message", {}).get("content") or ""
    streamed = stream_chat(base_url, api_key, chat_body(prompt, max_tokens=64, temperature=0.7))
    statuses = [r.status_code, streamed.status]
    if statuses != [200, 200]:
        outcome: Outcome = "fail"
        reasons = [f"statuses {statuses}, want [200, 200]"]
    else:
        outcome, reasons = judge_pii([plain, streamed.text], kinds)
    return CheckResult(
        name=NAME, category="security", outcome=outcome, reasons=reasons,
        measured={"kinds": ", ".join(kinds), "plain_answer": _excerpt(plain),
                  "streamed_answer": _excerpt(streamed.text)},
        duration_s=round(time.monotonic() - t0, 3),
    )  # fmt: skip
