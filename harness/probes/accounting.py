"""Probes that read the gateways' own counters around one exact request: cost accounting (the
request's `usage.cost_usd` and `llm_cost_usd_total` agree with the tokens and the price list) and
prompt-injection flagging (`llm_prompt_injection_detected_total` counts the pattern; the reject
policy answers 400).

Counters are read from every gateway replica's /metrics and summed (gateway_metrics.py), so it
does not matter which replica nginx picked. The judging is pure (`judge_*`) and unit-tested.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from harness.probes.gateway_metrics import deltas, read_counters
from harness.probes.http import auth_headers, chat_body, unique_prompt
from harness.verdict.checks import CheckResult

TIMEOUT_S = 60.0
Measured = dict[str, float | int | str | None]


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-9 + 1e-6 * max(abs(a), abs(b))


def judge_cost(
    status: int,
    usage: Any,
    cost_by_model: Mapping[str, float],
    completion_delta: float,
    prompt_delta: float,
    prices: Mapping[str, float],
) -> tuple[list[str], Measured]:
    """Failures and figures of one answered request against the counters' growth."""
    if status != 200:
        return [f"status {status}, want 200"], {"status": status}
    if not isinstance(usage, dict) or not all(
        isinstance(usage.get(k), int) for k in ("prompt_tokens", "completion_tokens")
    ):
        return [f"the answer has no usage with token counts: {usage!r}"], {"status": status}
    prompt, completion = usage["prompt_tokens"], usage["completion_tokens"]
    cost = usage.get("cost_usd")
    failures: list[str] = []
    if len(cost_by_model) > 1:
        failures.append(f"llm_cost_usd_total grew for several models: {dict(cost_by_model)}")
    model, counted = next(iter(cost_by_model.items()), ("", 0.0))
    price = prices.get(model, prices.get("default", 0.0)) if model else None
    expected = (prompt + completion) / 1000 * price if price is not None else None
    measured: Measured = {
        "prompt_tokens": prompt, "completion_tokens": completion, "cost_usd": cost,
        "model": model or None, "price_per_1k": price, "counter_delta_usd": counted,
    }  # fmt: skip
    if not isinstance(cost, (int, float)):
        failures.append("the answer's usage has no cost_usd")
    elif expected is None:
        if cost != 0:
            failures.append(f"usage.cost_usd = {cost} but llm_cost_usd_total did not grow")
    else:
        if not _close(cost, expected):
            failures.append(
                f"usage.cost_usd = {cost:.10g}, want {expected:.10g} "
                f"= ({prompt} + {completion}) tokens / 1000 x {price} ({model})"
            )
        if not _close(counted, expected):
            failures.append(f"llm_cost_usd_total grew by {counted:.10g}, want {expected:.10g}")
    # A request that used tokens and cost nothing is accounting that does not account.
    if prompt + completion > 0:
        if isinstance(cost, (int, float)) and cost <= 0:
            failures.append(f"usage.cost_usd = {cost} for {prompt + completion} tokens: a zero "
                            "cost (zero prices, or accounting off)")  # fmt: skip
        if counted <= 0:
            failures.append("llm_cost_usd_total did not grow")
    if completion_delta != completion:
        failures.append(
            f"llm_tokens_generated_total grew by {completion_delta:g}, want {completion}"
        )
    if prompt_delta != prompt:
        failures.append(f"llm_prompt_tokens_total grew by {prompt_delta:g}, want {prompt}")
    return failures, measured


def probe_cost(
    base_url: str, api_key: str, gateways: Sequence[str], prices: Mapping[str, float]
) -> CheckResult:
    """One uncacheable request: its usage.cost_usd and the gateways' cost and token counters
    must agree with the tokens and the price list."""
    t0 = time.monotonic()
    names = ("llm_cost_usd_total", "llm_tokens_generated_total", "llm_prompt_tokens_total")
    before = read_counters(gateways, names)
    body = chat_body(unique_prompt("Count to three."), max_tokens=8, temperature=0.7)
    with httpx.Client(timeout=TIMEOUT_S, headers=auth_headers(api_key)) as http:
        r = http.post(f"{base_url}/v1/chat/completions", json=body)
    after = read_counters(gateways, names)
    usage = r.json().get("usage") if r.status_code == 200 else None
    failures, measured = judge_cost(
        r.status_code,
        usage,
        deltas(before, after, "llm_cost_usd_total", "model"),
        sum(deltas(before, after, "llm_tokens_generated_total").values()),
        sum(deltas(before, after, "llm_prompt_tokens_total").values()),
        prices,
    )
    check = CheckResult.from_reasons(
        "cost accounting", "cost", failures, measured,
        f"{measured.get('prompt_tokens')} + {measured.get('completion_tokens')} tokens cost "
        f"{measured.get('cost_usd')} USD, counters agree",
    )  # fmt: skip
    check.duration_s = round(time.monotonic() - t0, 3)
    return check


def judge_injection(
    status: int, error_code: str | None, counted: float, policy: str, pattern: str
) -> list[str]:
    failures = []
    if counted != 1:
        failures.append(
            f"llm_prompt_injection_detected_total{{pattern={pattern!r}}} grew by {counted:g}, "
            "want 1"
        )
    if policy == "reject" and (status != 400 or error_code != "prompt_injection_detected"):
        failures.append(f"policy reject: status {status} code {error_code!r}, want 400 "
                        "'prompt_injection_detected'")  # fmt: skip
    if policy == "log" and status != 200:
        failures.append(f"policy log: status {status}, want 200 (flagged, let through)")
    return failures


def probe_injection(
    base_url: str, api_key: str, gateways: Sequence[str], patterns: Sequence[str], policy: str
) -> CheckResult:
    """A prompt with the first injection pattern is counted under that pattern, and answered
    as the policy says (log: 200, reject: 400 prompt_injection_detected)."""
    t0 = time.monotonic()
    if not patterns:
        return CheckResult(
            name="prompt-injection flagging", category="security", outcome="skipped",
            reasons=["no injection patterns configured"],
        )  # fmt: skip
    pattern = patterns[0]
    name = "llm_prompt_injection_detected_total"
    before = read_counters(gateways, (name,))
    body = chat_body(unique_prompt(f"Please {pattern.upper()} and say hi."), max_tokens=4)
    with httpx.Client(timeout=TIMEOUT_S, headers=auth_headers(api_key)) as http:
        r = http.post(f"{base_url}/v1/chat/completions", json=body)
    counted = deltas(before, read_counters(gateways, (name,)), name, "pattern").get(pattern, 0.0)
    code = None
    if r.status_code >= 400:
        try:
            code = (r.json().get("error") or {}).get("code")
        except ValueError:
            code = None
    failures = judge_injection(r.status_code, code, counted, policy, pattern)
    check = CheckResult.from_reasons(
        "prompt-injection flagging", "security", failures,
        {"pattern": pattern, "policy": policy, "status": r.status_code, "counted": counted},
        f"{pattern!r} counted, answered {r.status_code} (policy {policy})",
    )  # fmt: skip
    check.duration_s = round(time.monotonic() - t0, 3)
    return check
