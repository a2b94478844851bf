"""Probes of the gateway's practices through the load balancer: streaming, security, cache."""

from __future__ import annotations

import json
import time

import httpx

from harness import wire
from harness.clients.http import new_client
from harness.probes.http import auth_headers, chat_body, stream_chat, unique_prompt
from harness.spec.policy import StreamingPolicy
from harness.verdict.checks import CheckResult
from harness.verdict.practices import (
    CacheAnswer,
    HostileAnswer,
    RateLimitAnswer,
    StreamedAnswer,
    cache_check,
    rate_limit_check,
    security_check,
    streaming_check,
)

TIMEOUT_S = 60.0
HITS = 3  # the cache probe's repeats of the request that filled the cache
STREAM_TRIES = 3  # the streaming probe's prompts, while the answers are too short or bunched
STREAM_MAX_TOKENS = 96


def _timed(check: CheckResult, t0: float) -> CheckResult:
    check.duration_s = round(time.monotonic() - t0, 3)
    return check


def probe_streaming(
    base_url: str, api_key: str, policy: StreamingPolicy | None = None
) -> CheckResult:
    """A streamed chat completion returns generated tokens chunk by chunk, spread over time."""
    policy = policy or StreamingPolicy()
    names = wire.current()
    t0 = time.monotonic()
    # One unjudged answer first: the first request through freshly started gateways pays their
    # one-off setup (connections, lazy imports), and on a busy machine the model's tokens pile
    # up behind it and arrive together, which would read as a buffering proxy.
    stream_chat(base_url, api_key, chat_body(unique_prompt("Say hello."), max_tokens=4))
    # A short answer cannot show whether tokens arrive spread out: ask again (a model, or a
    # simulator drawing answer lengths, may stop after a token or two). And a long one: a
    # stream of a tenth of a second fits inside one scheduling stall of a busy machine, which
    # hands every token over at once; a proxy that buffers holds a long stream back too. One
    # that arrived all at once is asked again as well: the warm-up above reached one gateway
    # replica, and another's first request can stall so on a busy machine; a buffering proxy
    # buffers every stream, so it still fails on each try.
    chunks: list[int] = []
    check: CheckResult | None = None
    for _ in range(STREAM_TRIES):
        r = stream_chat(
            base_url,
            api_key,
            chat_body(unique_prompt("Name three colours."), max_tokens=STREAM_MAX_TOKENS),
        )
        chunks.append(r.content_chunks)
        answer = StreamedAnswer(
            status=r.status,
            error_body=r.error_body,
            text=r.text,
            request_id_header=names.request_id,
            request_id=r.headers.get(names.request_id.lower()),  # a stream's headers: lower case
            served_by=r.headers.get(names.served_by.lower()),
            content_chunks=r.content_chunks,
            chunk_times_s=r.chunk_times_s,
            total_s=r.total_s,
            tries=list(chunks),
        )
        tried = streaming_check(answer, policy)
        if check is None or r.content_chunks >= policy.min_chunks:
            check = tried  # a long answer's verdict stands over a later short one's
        if r.status != 200 or tried.outcome == "pass":
            check = tried
            break
    assert check is not None
    return _timed(check, t0)


# The hostile classes the security probe sends, each with the error (harness.wire.ERRORS) whose
# answer it must get.
HOSTILE: dict[str, str] = {
    "no key": "missing_key",
    "unknown key": "unknown_key",
    "oversized key": "oversized_key",
    "oversized prompt": "oversized_prompt",
    "malformed JSON": "malformed_json",
    "wrong method": "wrong_method",
    "unknown path": "unknown_path",
}


def _error_code(resp: httpx.Response) -> str | None:
    """The `code` of an OpenAI-style error body; ValueError when the body is not JSON."""
    body = resp.json()
    error = body.get("error") if isinstance(body, dict) else None
    return str(error["code"]) if isinstance(error, dict) and error.get("code") else None


def _hostile_requests(
    url: str, base_url: str, api_key: str, max_prompt_chars: int
) -> list[tuple[str, str, str, dict[str, str], bytes]]:
    """(class, method, url, headers, body) of every hostile request the probe sends."""
    ok = json.dumps(chat_body("hello", max_tokens=4)).encode()
    js = {"Content-Type": "application/json"}
    key = {**auth_headers(api_key), **js}
    big = json.dumps(chat_body("x" * (max_prompt_chars + 1), max_tokens=4)).encode()
    w = wire.current()
    return [
        ("no key", "POST", url, js, ok),
        ("no key", "POST", url, {**js, w.auth_header: w.auth_scheme}, ok),  # an empty credential
        ("unknown key", "POST", url, {**js, **auth_headers("sk-not-a-key")}, ok),
        ("unknown key", "POST", url, {**js, "X-API-Key": "sk-not-a-key"}, ok),
        ("oversized key", "POST", url, {**js, **auth_headers("sk-" + "k" * 6000)}, ok),
        ("oversized prompt", "POST", url, key, big),
        ("malformed JSON", "POST", url, key, b"{not json"),
        ("malformed JSON", "POST", url, key, b"\xff\xfe not utf-8"),
        ("malformed JSON", "POST", url, key, b"[]"),
        ("malformed JSON", "POST", url, key, b'{"messages": "not a list"}'),
        ("wrong method", "GET", url, key, b""),
        ("wrong method", "DELETE", url, key, b""),
        ("unknown path", "POST", f"{base_url}/v1/no-such-endpoint", key, ok),
    ]


def probe_security(base_url: str, api_key: str, max_prompt_chars: int = 10_000) -> CheckResult:
    """Hostile requests by class (no key, unknown or oversized key, oversized prompt, malformed
    JSON, wrong method, unknown path): each must get its 4xx with a JSON error (and its `code`,
    where the gateway contract names one), never a 2xx or 5xx. How many of each class were sent
    and how each was answered go in `measured`."""
    t0 = time.monotonic()
    url = f"{base_url}/v1/chat/completions"
    answers: list[HostileAnswer] = []
    with new_client(timeout=TIMEOUT_S) as http:
        for label, method, target, headers, body in _hostile_requests(
            url, base_url, api_key, max_prompt_chars
        ):
            resp = http.request(method, target, headers=headers, content=body or None)
            try:
                code, json_body = _error_code(resp), True
            except ValueError:
                code, json_body = None, False
            want = wire.current().expected_error(HOSTILE[label])
            answers.append(HostileAnswer(label, method, resp.status_code, code, json_body, want))
    return _timed(security_check(answers), t0)


def probe_cache(base_url: str, api_key: str, hit_speedup: float = 10.0) -> CheckResult:
    """The same deterministic request again and again: X-Cache miss, then hits, and the hits at
    least `hit_speedup` times faster than the miss (a label alone proves nothing)."""
    t0 = time.monotonic()
    # Room for a real generation: a miss of a few tokens is so quick that a busy machine's
    # scheduling noise on one hit, not the cache, would decide the ratio.
    body = chat_body(unique_prompt("Say one word."), max_tokens=64, temperature=0)
    answers: list[CacheAnswer] = []
    with new_client(timeout=TIMEOUT_S, headers=auth_headers(api_key)) as http:
        for _ in range(1 + HITS):
            s = time.perf_counter()
            r = http.post(f"{base_url}/v1/chat/completions", json=body)
            took = time.perf_counter() - s
            answers.append(
                CacheAnswer(r.status_code, r.text, r.headers.get(wire.current().cache, ""), took)
            )
    return _timed(cache_check(answers, hit_speedup), t0)


def _clear_of_minute_boundary(margin_s: float = 15.0) -> None:
    """Limiters count per clock minute (a sliding window over two of them): a burst that straddles
    a boundary is counted in both, so start it with `margin_s` left in the minute."""
    into = time.time() % 60
    if into > 60 - margin_s:
        time.sleep(60 - into + 0.5)


def probe_rate_limit(
    base_url: str,
    api_key: str,
    per_minute: int,
    *,
    declared: int | None = None,
    fresh_key: bool = False,
) -> CheckResult:
    """More than a minute's budget at once with one key: exactly the budget succeeds (at most the
    policy's `per_minute`), the rest get 429 with Retry-After and a JSON error. Spends the key's
    budget for the minute."""
    from concurrent.futures import ThreadPoolExecutor

    t0 = time.monotonic()
    body = chat_body(unique_prompt("ok"), max_tokens=1, temperature=0)
    if fresh_key:
        _clear_of_minute_boundary()
    with new_client(timeout=TIMEOUT_S, headers=auth_headers(api_key)) as http:

        def one(_: int) -> httpx.Response:
            return http.post(f"{base_url}/v1/chat/completions", json=body)

        # One request first, so the burst is answered from the cache: the probe tests the
        # limiter, not how many concurrent requests the model servers take.
        responses = [one(0)]
        with ThreadPoolExecutor(max_workers=8) as pool:
            responses += pool.map(one, range(per_minute + 19))
    refused = wire.current().expected_error("rate_limited")
    answers = [_rate_limit_answer(r) for r in responses]
    return _timed(rate_limit_check(answers, per_minute, declared, fresh_key, refused), t0)


def _rate_limit_answer(r: httpx.Response) -> RateLimitAnswer:
    try:
        code = _error_code(r)
    except ValueError:  # not a JSON body: no code
        code = None
    return RateLimitAnswer(
        r.status_code, r.headers.get("retry-after", ""), r.headers.get("content-type", ""), code
    )
