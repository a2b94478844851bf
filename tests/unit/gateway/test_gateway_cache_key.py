"""Cache key: stable over what does not change the answer, different over everything that does."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from gateway.cache import answer_from_stream, bypass_reason, cache_key, stream_from_answer

_json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-1000, 1000), st.text(max_size=8), st.floats(0, 2)
)
_params = st.dictionaries(
    st.sampled_from(["prompt", "max_tokens", "temperature", "top_p", "stop", "seed", "top_k"]),
    _json_scalars,
    max_size=7,
)


@given(_params)
def test_key_ignores_parameter_order(params: dict) -> None:
    reordered = dict(reversed(list(params.items())))
    assert cache_key("completion", "m", params) == cache_key("completion", "m", reordered)


@given(_params, st.booleans(), st.booleans())
def test_key_ignores_delivery_only_parameters(params: dict, stream: bool, usage: bool) -> None:
    streamed = {**params, "stream": stream, "stream_options": {"include_usage": usage}}
    assert cache_key("completion", "m", params) == cache_key("completion", "m", streamed)
    assert cache_key("completion", "m", params) == cache_key(
        "completion", "m", {**params, "user": "someone", "model": "whatever-the-client-said"}
    )


@given(_params, st.sampled_from(["prompt", "max_tokens", "temperature", "seed", "stop"]))
def test_key_changes_with_any_answer_changing_parameter(params: dict, name: str) -> None:
    changed = {**params, name: ["a value no strategy draws"]}
    assert cache_key("completion", "m", params) != cache_key("completion", "m", changed)


@given(_params)
def test_key_depends_on_model_and_endpoint(params: dict) -> None:
    base = cache_key("completion", "m", params)
    assert base != cache_key("completion", "other-model", params)
    assert base != cache_key("chat", "m", params)


def test_key_is_sha256_hex_with_prefix() -> None:
    key = cache_key("chat", "m", {"messages": [{"role": "user", "content": "hi"}]})
    prefix, digest = key.rsplit(":", 1)
    assert prefix == "llmcache:v1"
    assert len(digest) == 64 and int(digest, 16) >= 0


def test_only_temperature_zero_is_cacheable_by_default() -> None:
    assert bypass_reason({"temperature": 0}, only_deterministic=True) is None
    assert bypass_reason({"temperature": 0.0}, only_deterministic=True) is None
    assert bypass_reason({}, only_deterministic=True) == "nondeterministic"
    assert bypass_reason({"temperature": 0.7}, only_deterministic=True) == "nondeterministic"
    assert bypass_reason({"temperature": 0.7}, only_deterministic=False) is None


def test_requests_whose_answer_a_replay_cannot_carry_are_not_cached() -> None:
    for extra in ({"logprobs": True}, {"n": 2}, {"tools": [{"type": "function"}]}):
        assert bypass_reason({"temperature": 0, **extra}, True) == "unsupported_params"


def test_streamed_answer_round_trips_through_the_cache_format() -> None:
    usage = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5, "cost_usd": 1.0}
    answer = answer_from_stream("chat", "m", {0: "Hello there"}, {0: "length"}, usage)
    assert answer["choices"][0]["message"]["content"] == "Hello there"
    assert "cost_usd" not in answer["usage"]
    events = [e.decode() for e in stream_from_answer("chat", answer, include_usage=True)]
    payloads = [json.loads(e.removeprefix("data: ")) for e in events[:-1]]
    assert events[-1] == "data: [DONE]\n\n"
    assert payloads[0]["choices"][0]["delta"]["content"] == "Hello there"
    assert payloads[1]["choices"][0]["finish_reason"] == "length"
    assert payloads[2]["usage"]["completion_tokens"] == 2


def test_completion_replay_without_usage_chunk() -> None:
    answer = answer_from_stream("completion", "m", {0: "abc"}, {0: "stop"}, None)
    events = list(stream_from_answer("completion", answer, include_usage=False))
    assert len(events) == 3
    assert json.loads(events[0].decode().removeprefix("data: "))["choices"][0]["text"] == "abc"
