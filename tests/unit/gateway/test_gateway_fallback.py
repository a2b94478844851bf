"""Fallback request shaping: max_tokens clamped for the small pool, usage asked for in streams."""

from __future__ import annotations

from gateway.fallback import clamp_tokens


def test_max_tokens_is_clamped() -> None:
    assert clamp_tokens({"max_tokens": 500}, 50)["max_tokens"] == 50
    assert clamp_tokens({"max_tokens": 20}, 50)["max_tokens"] == 20


def test_absent_max_tokens_is_set_to_the_limit() -> None:
    assert clamp_tokens({}, 50) == {"max_tokens": 50}


def test_every_token_limit_is_clamped_and_the_original_is_untouched() -> None:
    body = {"max_tokens": 500, "max_completion_tokens": 400, "n_predict": 300}
    out = clamp_tokens(body, 50)
    assert out == {"max_tokens": 50, "max_completion_tokens": 50, "n_predict": 50}
    assert body["max_tokens"] == 500
