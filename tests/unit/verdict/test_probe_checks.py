"""Each probe's whole check judged from its typed evidence: the answers it got in, the check's
outcome, reasons and figures out. A planted defect fails with its reason; a sound stack passes."""

from __future__ import annotations

from dataclasses import replace

from harness.spec.policy import StreamingPolicy
from harness.verdict.practices import (
    CacheAnswer,
    HostileAnswer,
    InjectionAnswer,
    PiiAnswers,
    PiiUnanswered,
    RateLimitAnswer,
    StreamedAnswer,
    cache_check,
    cost_check,
    injection_check,
    judge_pii_probe,
    rate_limit_check,
    security_check,
    streaming_check,
)
from harness.wire import ErrorAnswer

# --- streaming --------------------------------------------------------------------------------

STREAMED = StreamedAnswer(
    status=200,
    error_body="",
    text="red, green, blue",
    request_id_header="X-Request-ID",
    request_id="req-1",
    served_by="primary",
    content_chunks=24,
    chunk_times_s=[0.2 + 0.02 * i for i in range(24)],
    total_s=0.7,
    tries=[24],
)


def test_a_spread_stream_with_text_and_request_id_passes() -> None:
    check = streaming_check(STREAMED, StreamingPolicy())
    assert check.outcome == "pass", check.reasons
    assert check.reasons[0].startswith("24 chunks from 200.0 to 660.0 ms")
    assert check.measured["served_by"] == "primary" and check.measured["tries"] == 1


def test_a_stream_without_text_or_request_id_fails() -> None:
    check = streaming_check(replace(STREAMED, text=" ", request_id=None), StreamingPolicy())
    assert check.outcome == "fail"
    assert check.reasons == ["no generated text", "no X-Request-ID header"]


def test_a_buffered_stream_fails_with_every_answer_it_took() -> None:
    buffered = replace(
        STREAMED, chunk_times_s=[0.69 + 0.0001 * i for i in range(24)], tries=[2, 3, 24]
    )
    check = streaming_check(buffered, StreamingPolicy())
    assert check.outcome == "fail"
    assert "the stream is buffered" in check.reasons[0]
    assert check.reasons[1] == "3 answers of 2, 3, 24 chunks"


def test_a_refused_stream_fails_with_its_error_body() -> None:
    check = streaming_check(replace(STREAMED, status=503, error_body="busy"), StreamingPolicy())
    assert check.outcome == "fail"
    assert check.reasons == ["status 503, want 200: busy"]
    assert "spread" not in check.measured


# --- security ---------------------------------------------------------------------------------

MISSING_KEY = ErrorAnswer(status=(401,), code="missing_api_key")
MALFORMED = ErrorAnswer(status=(400, 422))


def test_hostile_requests_refused_as_specified_pass_with_the_answers_described() -> None:
    answers = [
        HostileAnswer("no key", "POST", 401, "missing_api_key", True, MISSING_KEY),
        HostileAnswer("no key", "POST", 401, "missing_api_key", True, MISSING_KEY),
        HostileAnswer("malformed JSON", "POST", 422, None, True, MALFORMED),
    ]
    check = security_check(answers)
    assert check.outcome == "pass", check.reasons
    assert check.reasons == [
        "3 hostile requests in 2 classes, each refused as specified",
        "no key: 2 sent, answered 2x401",
        "malformed JSON: 1 sent, answered 1x422",
    ]
    assert (
        check.measured["no_key_sent"] == 2 and check.measured["malformed_json_answers"] == "1x422"
    )


def test_a_hostile_request_let_through_or_refused_wrongly_fails() -> None:
    answers = [
        HostileAnswer("no key", "POST", 200, None, True, MISSING_KEY),
        HostileAnswer("no key", "POST", 401, None, False, MISSING_KEY),
        HostileAnswer("no key", "POST", 401, "unauthorized", True, MISSING_KEY),
        HostileAnswer("malformed JSON", "POST", 500, None, False, MALFORMED),
    ]
    check = security_check(answers)
    assert check.outcome == "fail"
    assert check.reasons == [
        "no key: POST answered 200, want [401]",
        "no key: POST 401 error body is not JSON",
        "no key: POST 401 error code 'unauthorized', want 'missing_api_key'",
        "malformed JSON: POST answered 500, want [400, 422]",
        "no key: 3 sent, answered 1x200, 2x401",
        "malformed JSON: 1 sent, answered 1x500",
    ]


# --- cache ------------------------------------------------------------------------------------


def cached(*answers: tuple[int, str, float]) -> list[CacheAnswer]:
    return [CacheAnswer(status, "x" * 300, cache, t) for status, cache, t in answers]


def test_a_miss_then_fast_hits_pass() -> None:
    check = cache_check(
        cached((200, "miss", 0.4), (200, "hit", 0.004), (200, "hit", 0.003), (200, "hit", 0.2)),
        10,
    )
    assert check.outcome == "pass", check.reasons
    assert check.reasons == ["miss then hit, 100.0x faster (policy 10x)"]


def test_a_failed_request_fails_the_cache_check_first() -> None:
    check = cache_check(
        cached((200, "miss", 0.4), (500, "", 0.004), (200, "hit", 0.003), (200, "hit", 0.003)),
        10,
    )
    assert check.outcome == "fail"
    assert check.reasons[0] == "status 500: " + "x" * 200
    assert check.reasons[1] == "X-Cache was ['miss', '', 'hit', 'hit'], want " + str(
        ["miss", "hit", "hit", "hit"]
    )


# --- rate limit -------------------------------------------------------------------------------

REFUSED = ErrorAnswer(status=(429,), code="rate_limited")


def burst(ok: int, refusal: RateLimitAnswer, total: int = 120) -> list[RateLimitAnswer]:
    return [RateLimitAnswer(200)] * ok + [refusal] * (total - ok)


PROPER = RateLimitAnswer(429, "12", "application/json", "rate_limited")


def test_exactly_the_budget_admitted_and_proper_refusals_pass() -> None:
    check = rate_limit_check(burst(100, PROPER), 100, 100, True, REFUSED)
    assert check.outcome == "pass", check.reasons
    assert check.reasons == ["100 admitted, 20 of 120 refused with 429 + Retry-After"]
    assert check.measured["limited"] == 20 and check.measured["fresh_key"] == "true"


def test_a_refusal_without_retry_after_json_or_code_fails() -> None:
    check = rate_limit_check(
        burst(100, RateLimitAnswer(429, "soon", "text/plain")), 100, 100, True, REFUSED
    )
    assert check.outcome == "fail"
    assert check.reasons == [
        "a 429 without a Retry-After of whole seconds",
        "a 429 without a JSON error body",
    ]
    coded = rate_limit_check(burst(100, replace(PROPER, code=None)), 100, 100, True, REFUSED)
    assert coded.reasons == ["a 429 without the error code 'rate_limited'"]


def test_more_than_the_budget_admitted_fails() -> None:
    check = rate_limit_check(burst(101, PROPER), 100, 100, True, REFUSED)
    assert check.outcome == "fail"
    assert check.reasons == ["101 of 120 requests admitted at once, policy 100/minute"]


# --- cost, injection, PII ---------------------------------------------------------------------


def test_cost_and_injection_checks_pass_and_fail_with_the_judges_reasons() -> None:
    usage = {"prompt_tokens": 24, "completion_tokens": 8, "cost_usd": 0.0000064}
    prices = {"default": 0.0002}
    ok = cost_check(200, usage, {"m": 0.0000064}, 8, 24, prices)
    assert ok.outcome == "pass" and ok.reasons == ["24 + 8 tokens cost 6.4e-06 USD, counters agree"]
    assert cost_check(503, None, {}, 0, 0, prices).reasons == ["status 503, want 200"]
    refusal = ErrorAnswer(status=(400,), code="prompt_injection_detected")
    flagged = [
        InjectionAnswer("system:", 200, None, 1),
        InjectionAnswer("assistant:", 200, None, 1),
    ]
    passed = injection_check(flagged, "log", refusal)
    assert passed.outcome == "pass"
    assert passed.reasons == [
        "each of the policy's 2 patterns counted once, answered 200 (policy log)"
    ]
    failed = injection_check(flagged, "reject", refusal)
    assert failed.outcome == "fail" and len(failed.reasons) == 2
    assert failed.measured["counted"] == 2


def test_an_unanswered_pii_request_fails_before_the_answers_are_judged() -> None:
    filtered = PiiAnswers("email", "jane.doe@example.com", "[EMAIL]", "[EMAIL]")
    assert judge_pii_probe([filtered], [], 6)[0] == "pass"
    outcome, reasons = judge_pii_probe(
        [filtered],
        [PiiUnanswered("phone", (503, 200), None), PiiUnanswered("ssn", (200, 0), "m")],
        6,
    )
    assert outcome == "fail"
    assert reasons == [
        "phone: statuses [503, 200] from the default model, want [200, 200]",
        "ssn: statuses [200, 0] from m, want [200, 200]",
    ]
