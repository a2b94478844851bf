"""Probes that read the gateways' own counters around one exact request: cost accounting (the
request's `usage.cost_usd` and `llm_cost_usd_total` agree with the tokens and the price list) and
prompt-injection flagging (`llm_prompt_injection_detected_total` counts each of the policy's
patterns; under the policy's `reject` they are refused); under the gated stack's names
(harness.wire).

Counters are read from every gateway replica's /metrics and summed (gateway_metrics.py), so it
does not matter which replica nginx picked. The judging is in harness/verdict/practices.py.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

from harness import wire
from harness.clients.http import json_object, new_client
from harness.errors import AnswerError
from harness.probes.gateway_metrics import deltas, read_counters
from harness.probes.http import auth_headers, chat_body, unique_prompt
from harness.spec.policy import InjectionPolicy
from harness.verdict.checks import CheckResult
from harness.verdict.practices import InjectionAnswer, cost_check, injection_check

TIMEOUT_S = 60.0
# The gateway metrics each probe reads, by their reference names (harness.wire.METRICS).
COST_METRICS = ("llm_cost_usd_total", "llm_tokens_generated_total", "llm_prompt_tokens_total")
INJECTION_METRIC = "llm_prompt_injection_detected_total"


def probe_cost(
    base_url: str, api_key: str, gateways: Sequence[str], prices: Mapping[str, float]
) -> CheckResult:
    """One uncacheable request: its usage.cost_usd and the gateways' cost and token counters
    must agree with the tokens and the price list."""
    t0 = time.monotonic()
    cost, generated, prompted = map(wire.current().expected_metric, COST_METRICS)
    names = (cost, generated, prompted)
    before = read_counters(gateways, names)
    body = chat_body(unique_prompt("Count to three."), max_tokens=8, temperature=0.7)
    with new_client(timeout=TIMEOUT_S, headers=auth_headers(api_key)) as http:
        r = http.post(f"{base_url}/v1/chat/completions", json=body)
    after = read_counters(gateways, names)
    usage = json_object(r).get("usage") if r.status_code == 200 else None
    check = cost_check(
        r.status_code,
        usage,
        deltas(before, after, cost, "model"),
        sum(deltas(before, after, generated).values()),
        sum(deltas(before, after, prompted).values()),
        prices,
        names,
    )
    check.duration_s = round(time.monotonic() - t0, 3)
    return check


def probe_injection(
    base_url: str, api_key: str, gateways: Sequence[str], policy: InjectionPolicy
) -> CheckResult:
    """A prompt with each of the policy's injection patterns, whatever the candidate configured:
    each must be counted under its pattern and answered as the policy says (log: let through,
    or refused, which is stricter; reject: refused)."""
    t0 = time.monotonic()
    name = wire.current().expected_metric(INJECTION_METRIC)
    refusal = wire.current().error("prompt_injection")
    answers: list[InjectionAnswer] = []
    with new_client(timeout=TIMEOUT_S, headers=auth_headers(api_key)) as http:
        for pattern in policy.patterns:
            # Counters around each prompt alone: a pattern inside another is not counted twice.
            before = read_counters(gateways, (name,))
            body = chat_body(unique_prompt(f"Please {pattern.upper()} and say hi."), max_tokens=4)
            r = http.post(f"{base_url}/v1/chat/completions", json=body)
            after = read_counters(gateways, (name,))
            code = None
            if r.status_code >= 400:
                try:
                    error = json_object(r).get("error")
                except AnswerError:
                    error = None
                code = error.get("code") if isinstance(error, dict) else None
            # The label is the pattern as the candidate spells it; the gateway ignores case.
            grown = deltas(before, after, name, "pattern")
            counted = sum(v for label, v in grown.items() if label.lower() == pattern.lower())
            answers.append(InjectionAnswer(pattern, r.status_code, code, counted))
    check = injection_check(answers, policy.action, refusal, name)
    check.duration_s = round(time.monotonic() - t0, 3)
    return check
