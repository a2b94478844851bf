"""Judging the practices' probes: pure functions from what a probe measured to the failures it
shows, and to each probe's whole check (probes measure; the verdict judges). Each takes exact
numbers or typed answers, so unit tests call them directly with planted defects."""

from __future__ import annotations

import itertools
import re
import statistics
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from harness.spec.policy import StreamingPolicy
from harness.verdict.checks import CheckResult, Outcome
from harness.wire import ErrorAnswer

Measured = dict[str, float | int | str | None]


def judge_streaming(
    chunk_times_s: list[float], total_s: float, policy: StreamingPolicy
) -> tuple[list[str], dict[str, float | int | str | None]]:
    """A stream streams when its chunks arrive spread over the answer, not all at once: the span
    from the first content chunk to the last must be at least `min_spread` of the whole request
    (a buffering proxy delivers everything at the end: a span near 0). The gaps between chunks are
    reported beside it."""
    failures: list[str] = []
    n = len(chunk_times_s)
    gaps = [b - a for a, b in itertools.pairwise(chunk_times_s)]
    span = chunk_times_s[-1] - chunk_times_s[0] if n >= 2 else 0.0
    spread = span / total_s if total_s > 0 else 0.0
    gap_p50_ms = sorted(gaps)[len(gaps) // 2] * 1000 if gaps else 0.0
    measured: dict[str, float | int | str | None] = {
        "content_chunks": n,
        "first_chunk_ms": round(chunk_times_s[0] * 1000, 1) if n else None,
        "last_chunk_ms": round(chunk_times_s[-1] * 1000, 1) if n else None,
        "spread": round(spread, 3),
        "gap_p50_ms": round(gap_p50_ms, 2) if gaps else None,
        "gap_max_ms": round(max(gaps) * 1000, 2) if gaps else None,
    }
    if n < policy.min_chunks:
        failures.append(f"{n} content chunks streamed, want at least {policy.min_chunks}")
    elif spread < policy.min_spread:
        failures.append(
            f"chunks arrived together: first at {measured['first_chunk_ms']} ms, last at "
            f"{measured['last_chunk_ms']} ms of {total_s * 1000:.0f} ms (spread {spread:.3f}, "
            f"policy at least {policy.min_spread:g}): the stream is buffered"
        )
    return failures, measured


def judge_cache(
    caches: list[str], times_s: list[float], hit_speedup: float
) -> tuple[list[str], Measured]:
    """The first of the same deterministic requests is a miss, the rest are hits, and the hits
    (their median: one slowed by a busy machine does not decide) answer at least `hit_speedup`
    times faster than the miss: a label alone proves nothing."""
    failures: list[str] = []
    want = ["miss"] + ["hit"] * (len(caches) - 1)
    if caches != want:
        failures.append(f"X-Cache was {caches}, want {want}")
    hit = statistics.median(times_s[1:])
    speedup = times_s[0] / hit if hit > 0 else None
    if speedup is not None and speedup < hit_speedup:
        failures.append(
            f"the hits took {hit * 1000:.1f} ms (median of {len(times_s) - 1}), the miss "
            f"{times_s[0] * 1000:.1f} ms: {speedup:.1f}x faster, policy at least {hit_speedup:g}x"
        )
    return failures, {
        "miss_ms": round(times_s[0] * 1000, 1),
        "hit_ms": round(hit * 1000, 1),
        "speedup": round(speedup, 1) if speedup else None,
        "speedup_wanted": hit_speedup,
    }


def judge_rate_limit(
    codes: list[int],
    budget: int,
    declared: int | None,
    fresh_key: bool,
    refused: tuple[int, ...] = (429,),
) -> list[str]:
    """The limiter admits at most the policy's budget, and on a key nothing has used yet exactly
    what the candidate declares (when that is within the policy): one request more or less is a
    limiter that does not do what it says. `refused`: the gateway's rate-limited statuses."""
    ok, limited = codes.count(200), sum(c in refused for c in codes)
    failures: list[str] = []
    if ok > budget:
        failures.append(f"{ok} of {len(codes)} requests admitted at once, policy {budget}/minute")
    elif fresh_key and declared is not None and declared <= budget and ok != declared:
        failures.append(
            f"{ok} of {len(codes)} requests admitted on a fresh key, the candidate "
            f"declares {declared}/minute"
        )
    if not limited:
        failures.append(
            f"no {' or '.join(map(str, refused))} among {len(codes)} requests sent at once"
        )
    other = sorted({c for c in codes if c != 200 and c not in refused})
    if other:
        failures.append(f"unexpected statuses {other}")
    return failures


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-9 + 1e-6 * max(abs(a), abs(b))


def judge_cost(
    status: int,
    usage: Any,
    cost_by_model: Mapping[str, float],
    completion_delta: float,
    prompt_delta: float,
    prices: Mapping[str, float],
    names: tuple[str, str, str] = (
        "llm_cost_usd_total",
        "llm_tokens_generated_total",
        "llm_prompt_tokens_total",
    ),
) -> tuple[list[str], Measured]:
    """Failures and figures of one answered request against the counters' growth (the counters
    as the gateway names them: cost, completion tokens, prompt tokens)."""
    cost_total, generated_total, prompt_total = names
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
        failures.append(f"{cost_total} grew for several models: {dict(cost_by_model)}")
    model, counted = next(iter(cost_by_model.items()), ("", 0.0))
    price = prices.get(model, prices.get("default", 0.0)) if model else None
    expected = (prompt + completion) / 1000 * price if price is not None else None
    measured: Measured = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "cost_usd": cost,
        "model": model or None,
        "price_per_1k": price,
        "counter_delta_usd": counted,
    }
    if not isinstance(cost, (int, float)):
        failures.append("the answer's usage has no cost_usd")
    elif expected is None:
        if cost != 0:
            failures.append(f"usage.cost_usd = {cost} but {cost_total} did not grow")
    else:
        if not _close(cost, expected):
            failures.append(
                f"usage.cost_usd = {cost:.10g}, want {expected:.10g} "
                f"= ({prompt} + {completion}) tokens / 1000 x {price} ({model})"
            )
        if not _close(counted, expected):
            failures.append(f"{cost_total} grew by {counted:.10g}, want {expected:.10g}")
    # A request that used tokens and cost nothing is accounting that does not account.
    if prompt + completion > 0:
        if isinstance(cost, (int, float)) and cost <= 0:
            failures.append(
                f"usage.cost_usd = {cost} for {prompt + completion} tokens: a zero "
                "cost (zero prices, or accounting off)"
            )
        if counted <= 0:
            failures.append(f"{cost_total} did not grow")
    if completion_delta != completion:
        failures.append(f"{generated_total} grew by {completion_delta:g}, want {completion}")
    if prompt_delta != prompt:
        failures.append(f"{prompt_total} grew by {prompt_delta:g}, want {prompt}")
    return failures, measured


@dataclass(frozen=True)
class InjectionAnswer:
    """One prompt with one of the policy's patterns: how it was answered and how much the
    gateway's counter grew under that pattern."""

    pattern: str
    status: int
    error_code: str | None
    counted: float


def judge_injection(
    answers: Sequence[InjectionAnswer],
    action: str,
    refusal: ErrorAnswer | None = None,
    metric: str = "llm_prompt_injection_detected_total",
) -> list[str]:
    """Each of the policy's patterns is counted once under its name and answered as the policy's
    `action` says: log, let through (200) or refused (stricter); reject, refused. `refusal`: how
    the gateway refuses a flagged prompt (None: the gateway contract marks it absent)."""
    failures = []
    for a in answers:
        if a.counted != 1:
            failures.append(f"{metric}{{pattern={a.pattern!r}}} grew by {a.counted:g}, want 1")
        refused = (
            refusal is not None
            and a.status in refusal.status
            and (not refusal.code or a.error_code == refusal.code)
        )
        if action == "reject" and not refused:
            want = refusal.describe() if refusal else "a refusal"
            failures.append(
                f"{a.pattern!r}: policy reject: status {a.status} code "
                f"{a.error_code!r}, want {want}"
            )
        if action == "log" and a.status != 200 and not refused:
            also = f" or refused with {refusal.describe()}" if refusal else ""
            failures.append(
                f"{a.pattern!r}: policy log: status {a.status}, want 200 (flagged, "
                f"let through){also}"
            )
    return failures


# PRACTICES.md's output filter: what each kind of PII looks like, and its placeholder.
PII_PATTERNS = {
    "email": re.compile(r"\b[\w.-]+@[\w.-]+\.\w+\b"),
    "phone": re.compile(r"\b\d{3}[-.]?\d{3}[-.]?\d{4}\b"),
    "ssn": re.compile(r"\b\d{3}-\d{2}-\d{4}\b"),
}
PLACEHOLDER = {"email": "[EMAIL]", "phone": "[PHONE]", "ssn": "[SSN]"}


def carries(answer: str, kind: str) -> bool:
    """Whether a live answer carried a value of `kind` through the gateway: as its placeholder
    (filtered) or as the value itself (leaked). Otherwise the model did not repeat it."""
    return PLACEHOLDER[kind] in answer or PII_PATTERNS[kind].search(answer) is not None


@dataclass(frozen=True)
class PiiAnswers:
    """The plain and the streamed answer to a prompt that asked the model to repeat `planted`."""

    kind: str
    planted: str
    plain: str
    streamed: str


def judge_pii(found: Sequence[PiiAnswers], tries: int) -> tuple[Outcome, list[str]]:
    """Any value of a kind in an answer is a leak (fail), the planted one or another the model
    made up; its placeholder in both answers is proof. A kind no answer carried in `tries`
    prompts is unproven: skipped when none is proven, else a warning."""
    leaks = []
    for f in found:
        for which, text in (("plain", f.plain), ("streamed", f.streamed)):
            if f.planted in text:
                leaks.append(f"the {which} answer leaks the planted {f.kind} {f.planted!r}")
            elif m := PII_PATTERNS[f.kind].search(text):
                leaks.append(f"the {which} answer leaks an unfiltered {f.kind} {m.group()!r}")
    if leaks:
        return "fail", leaks
    proven = [
        f.kind
        for f in found
        if PLACEHOLDER[f.kind] in f.plain and PLACEHOLDER[f.kind] in f.streamed
    ]
    unproven = [f.kind for f in found if f.kind not in proven]
    if not proven:
        return "skipped", [
            f"no live answer repeated the planted PII in {tries} prompts per kind, so its "
            "filtering could not be seen"
        ]
    if unproven:
        return "warn", [
            f"filtered: {', '.join(proven)}; not repeated by the model in {tries} "
            f"prompts, so not proven: {', '.join(unproven)}"
        ]
    return "pass", [
        f"{', '.join(proven)} replaced by placeholders in plain and streamed live answers"
    ]


# --- whole checks: each probe's evidence in, its CheckResult out -------------------------------


@dataclass(frozen=True)
class StreamedAnswer:
    """The streaming probe's last streamed answer, and how many content chunks each answer it
    asked for carried (it asks again while the answers are too short to judge)."""

    status: int
    error_body: str
    text: str
    request_id_header: str
    request_id: str | None
    served_by: str | None
    content_chunks: int
    chunk_times_s: list[float]
    total_s: float
    tries: Sequence[int]


def streaming_check(answer: StreamedAnswer, policy: StreamingPolicy) -> CheckResult:
    """A 200 with generated text and a request id, its chunks spread over the answer."""
    a = answer
    failures: list[str] = []
    measured: Measured = {"status": a.status, "tries": len(a.tries)}
    if a.status != 200:
        failures.append(f"status {a.status}, want 200: {a.error_body}")
    else:
        if not a.text.strip():
            failures.append("no generated text")
        if not a.request_id:
            failures.append(f"no {a.request_id_header} header")
        found, figures = judge_streaming(a.chunk_times_s, a.total_s, policy)
        if len(a.tries) > 1 and found:
            found.append(f"{len(a.tries)} answers of {', '.join(map(str, a.tries))} chunks")
        failures += found
        measured |= figures
    measured["served_by"] = a.served_by
    return CheckResult.from_reasons(
        "streamed completion",
        "stack",
        failures,
        measured,
        f"{a.content_chunks} chunks from {measured.get('first_chunk_ms')} to "
        f"{measured.get('last_chunk_ms')} ms (spread {measured.get('spread')}), "
        f"gaps p50 {measured.get('gap_p50_ms')} ms",
    )


@dataclass(frozen=True)
class HostileAnswer:
    """One hostile request of a class (`label`), its answer, and the answer it must get."""

    label: str
    method: str
    status: int
    # The error body's `code` (None: none), and whether the body is JSON at all.
    code: str | None
    json_body: bool
    want: ErrorAnswer


def security_check(answers: Sequence[HostileAnswer]) -> CheckResult:
    """Each hostile request gets its 4xx with a JSON error body (and its `code`, where the
    gateway contract names one). How many of each class were sent and how each was answered are
    in `measured` and in the reasons, pass or fail."""
    failures: list[str] = []
    counts: dict[str, Counter[int]] = {}
    for a in answers:
        counts.setdefault(a.label, Counter())[a.status] += 1
        if a.status not in a.want.status:
            failures.append(
                f"{a.label}: {a.method} answered {a.status}, want {sorted(a.want.status)}"
            )
        elif not a.json_body:
            failures.append(f"{a.label}: {a.method} {a.status} error body is not JSON")
        elif a.want.code and a.code != a.want.code:
            failures.append(
                f"{a.label}: {a.method} {a.status} error code {a.code!r}, want {a.want.code!r}"
            )
    measured: Measured = {"sent": len(answers)}
    described = []
    for label, by_status in counts.items():
        slug = label.replace(" ", "_").lower()
        measured[f"{slug}_sent"] = sum(by_status.values())
        measured[f"{slug}_answers"] = ", ".join(f"{n}x{c}" for c, n in sorted(by_status.items()))
        described.append(
            f"{label}: {sum(by_status.values())} sent, answered {measured[f'{slug}_answers']}"
        )
    check = CheckResult.from_reasons(
        "authentication and input validation",
        "security",
        failures,
        measured,
        f"{len(answers)} hostile requests in {len(counts)} classes, each refused as specified",
    )
    check.reasons += described
    return check


@dataclass(frozen=True)
class CacheAnswer:
    """One of the cache probe's identical requests: its status, body, X-Cache and time."""

    status: int
    body: str
    cache: str
    time_s: float


def cache_check(answers: Sequence[CacheAnswer], hit_speedup: float) -> CheckResult:
    """Every request answered 200; a miss, then hits `hit_speedup` times faster (judge_cache)."""
    failures = [f"status {a.status}: {a.body[:200]}" for a in answers if a.status != 200]
    found, measured = judge_cache(
        [a.cache for a in answers], [a.time_s for a in answers], hit_speedup
    )
    return CheckResult.from_reasons(
        "response cache",
        "cache",
        failures + found,
        measured,
        f"miss then hit, {measured['speedup']}x faster (policy {hit_speedup:g}x)",
    )


@dataclass(frozen=True)
class RateLimitAnswer:
    """One answer of the rate-limit burst: status, Retry-After, Content-Type and the error
    body's `code` (None: none, or not a JSON body)."""

    status: int
    retry_after: str = ""
    content_type: str = ""
    code: str | None = None


def rate_limit_check(
    answers: Sequence[RateLimitAnswer],
    per_minute: int,
    declared: int | None,
    fresh_key: bool,
    refused: ErrorAnswer,
) -> CheckResult:
    """The budget admitted (judge_rate_limit), and each refusal as the contract says it: its
    status with a Retry-After of whole seconds and a JSON error body with its `code`."""
    codes = [a.status for a in answers]
    limited = [a for a in answers if a.status in refused.status]
    failures = judge_rate_limit(codes, per_minute, declared, fresh_key, refused.status)
    shown = "/".join(map(str, refused.status))
    if any(not a.retry_after.isdigit() for a in limited):
        failures.append(f"a {shown} without a Retry-After of whole seconds")
    if any("json" not in a.content_type for a in limited):
        failures.append(f"a {shown} without a JSON error body")
    elif refused.code and any(a.code != refused.code for a in limited):
        failures.append(f"a {shown} without the error code {refused.code!r}")
    measured: Measured = {
        "sent": len(codes),
        "ok": codes.count(200),
        "limited": len(limited),
        "limit_per_minute": per_minute,
        "declared_per_minute": declared,
        "fresh_key": str(fresh_key).lower(),
    }
    return CheckResult.from_reasons(
        "rate limit per API key",
        "rate-limit",
        failures,
        measured,
        f"{codes.count(200)} admitted, {len(limited)} of {len(codes)} refused with {shown} + "
        "Retry-After",
    )


def cost_check(
    status: int,
    usage: Any,
    cost_by_model: Mapping[str, float],
    completion_delta: float,
    prompt_delta: float,
    prices: Mapping[str, float],
    names: tuple[str, str, str] = (
        "llm_cost_usd_total",
        "llm_tokens_generated_total",
        "llm_prompt_tokens_total",
    ),
) -> CheckResult:
    """The cost probe's check: judge_cost on its one request and the counters' growth."""
    failures, measured = judge_cost(
        status, usage, cost_by_model, completion_delta, prompt_delta, prices, names
    )
    return CheckResult.from_reasons(
        "cost accounting",
        "cost",
        failures,
        measured,
        f"{measured.get('prompt_tokens')} + {measured.get('completion_tokens')} tokens cost "
        f"{measured.get('cost_usd')} USD, counters agree",
    )


def injection_check(
    answers: Sequence[InjectionAnswer],
    action: str,
    refusal: ErrorAnswer | None = None,
    metric: str = "llm_prompt_injection_detected_total",
) -> CheckResult:
    """The injection probe's check: judge_injection on each pattern's answer and count."""
    failures = judge_injection(answers, action, refusal, metric)
    statuses = ", ".join(sorted({str(a.status) for a in answers}))
    return CheckResult.from_reasons(
        "prompt-injection flagging",
        "security",
        failures,
        {
            "patterns": len(answers),
            "action": action,
            "statuses": statuses,
            "counted": sum(a.counted for a in answers),
        },
        f"each of the policy's {len(answers)} patterns counted once, answered {statuses} "
        f"(policy {action})",
    )


@dataclass(frozen=True)
class PiiUnanswered:
    """A kind whose plain or streamed request was not answered 200, so nothing was seen."""

    kind: str
    statuses: tuple[int, int]  # plain, streamed
    model: str | None


def judge_pii_probe(
    found: Sequence[PiiAnswers], unanswered: Sequence[PiiUnanswered], tries: int
) -> tuple[Outcome, list[str]]:
    """A request the gateway did not answer fails the probe; else the answers are judged
    (judge_pii)."""
    if unanswered:
        return "fail", [
            f"{u.kind}: statuses {list(u.statuses)} from {u.model or 'the default model'}, "
            "want [200, 200]"
            for u in unanswered
        ]
    return judge_pii(found, tries)
