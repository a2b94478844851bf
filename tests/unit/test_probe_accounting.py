"""The cost and prompt-injection probes' judging, on exact numbers (no stack needed)."""

from __future__ import annotations

import pytest

from harness.probes.gateway_metrics import deltas, parse_counters
from harness.verdict.practices import InjectionAnswer, judge_cost, judge_injection
from harness.wire import ErrorAnswer

PAGE_0 = """# TYPE llm_cost_usd_total counter
llm_cost_usd_total{model="smollm2-135m"} 0.0005
# TYPE llm_tokens_generated_total counter
llm_tokens_generated_total 100.0
# TYPE llm_prompt_injection_detected_total counter
llm_prompt_injection_detected_total{pattern="system:"} 2.0
"""
PAGE_1 = """# TYPE llm_cost_usd_total counter
llm_cost_usd_total{model="smollm2-135m"} 0.0001
# TYPE llm_tokens_generated_total counter
llm_tokens_generated_total 20.0
"""
NAMES = ("llm_cost_usd_total", "llm_tokens_generated_total", "llm_prompt_injection_detected_total")
PRICES = {"smollm2-135m": 0.0002, "default": 0.0001}


def test_counters_are_summed_over_replicas_and_diffed_by_label() -> None:
    before = parse_counters([PAGE_0, PAGE_1], NAMES)
    assert before[("llm_tokens_generated_total", ())] == 120.0
    after = dict(before)
    after[("llm_cost_usd_total", (("model", "smollm2-135m"),))] += 0.0000064
    after[("llm_prompt_injection_detected_total", (("pattern", "disregard above"),))] = 1.0
    assert deltas(before, after, "llm_cost_usd_total", "model") == {
        "smollm2-135m": pytest.approx(0.0000064)
    }
    assert deltas(before, after, "llm_prompt_injection_detected_total", "pattern") == {
        "disregard above": 1.0
    }
    assert deltas(before, after, "llm_tokens_generated_total") == {}


def test_cost_that_matches_tokens_price_and_counters_passes() -> None:
    usage = {"prompt_tokens": 24, "completion_tokens": 8, "cost_usd": 0.0000064}
    failures, measured = judge_cost(200, usage, {"smollm2-135m": 0.0000064}, 8, 24, PRICES)
    assert failures == []
    assert measured["price_per_1k"] == 0.0002 and measured["model"] == "smollm2-135m"


def test_unknown_model_is_charged_the_default_price() -> None:
    usage = {"prompt_tokens": 10, "completion_tokens": 10, "cost_usd": 0.000002}
    failures, _ = judge_cost(200, usage, {"other": 0.000002}, 10, 10, PRICES)
    assert failures == []


def test_every_disagreement_is_reported() -> None:
    usage = {"prompt_tokens": 24, "completion_tokens": 8, "cost_usd": 0.001}
    failures, _ = judge_cost(200, usage, {"smollm2-135m": 0.0000032}, 7, 0, PRICES)
    assert len(failures) == 4
    assert failures[0].startswith("usage.cost_usd = 0.001, want 6.4e-06 = (24 + 8) tokens")
    assert "llm_cost_usd_total grew by 3.2e-06" in failures[1]
    assert "llm_tokens_generated_total grew by 7, want 8" in failures[2]
    assert "llm_prompt_tokens_total grew by 0, want 24" in failures[3]


def test_an_answer_without_usage_or_a_failed_request_fails() -> None:
    assert judge_cost(200, None, {}, 0, 0, PRICES)[0][0].startswith("the answer has no usage")
    assert judge_cost(503, None, {}, 0, 0, PRICES)[0] == ["status 503, want 200"]
    usage = {"prompt_tokens": 1, "completion_tokens": 1}
    assert "no cost_usd" in judge_cost(200, usage, {"m": 1e-6}, 1, 1, PRICES)[0][0]


def test_injection_is_judged_by_the_counter_and_the_policy() -> None:
    refusal = ErrorAnswer(status=(400,), code="prompt_injection_detected")

    def one(status: int, code: str | None, counted: float) -> list[InjectionAnswer]:
        return [InjectionAnswer("system:", status, code, counted)]

    assert judge_injection(one(200, None, 1), "log", refusal) == []
    assert judge_injection(one(400, "prompt_injection_detected", 1), "reject", refusal) == []
    # Refusing what the policy only flags is stricter: it passes.
    assert judge_injection(one(400, "prompt_injection_detected", 1), "log", refusal) == []
    (let_through,) = judge_injection(one(200, None, 1), "reject", refusal)
    assert let_through == (
        "'system:': policy reject: status 200 code None, want 400 code 'prompt_injection_detected'"
    )
    (other,) = judge_injection(one(400, "invalid_parameter", 1), "log", refusal)
    assert other.startswith("'system:': policy log: status 400, want 200 (flagged, let through)")
    (missed,) = judge_injection(one(200, None, 0), "log", refusal)
    assert missed == "llm_prompt_injection_detected_total{pattern='system:'} grew by 0, want 1"


def test_every_policy_pattern_the_candidate_misses_is_named() -> None:
    answers = [
        InjectionAnswer(p, 200, None, 0 if p != "system:" else 1)
        for p in ("ignore previous instructions", "system:", "disregard above")
    ]
    failures = judge_injection(answers, "log", None, "acme_flags_total")
    assert failures == [
        "acme_flags_total{pattern='ignore previous instructions'} grew by 0, want 1",
        "acme_flags_total{pattern='disregard above'} grew by 0, want 1",
    ]
