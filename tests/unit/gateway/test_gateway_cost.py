"""Cost accounting: USD per 1K tokens, prompt plus completion (PRACTICES.md section 7)."""

from __future__ import annotations

import pytest

from gateway.cost import Usage, price_per_1k, request_cost, usage_from_body
from gateway.postprocess import filter_answer

PRICES = {"llama-7b": 0.0001, "llama-70b": 0.0010, "default": 0.0002}


def test_practices_example() -> None:
    assert request_cost(Usage(500, 500), "llama-70b", PRICES) == pytest.approx(0.001)
    assert request_cost(Usage(1000, 1000), "llama-7b", PRICES) == pytest.approx(0.0002)


def test_unknown_model_uses_default_price() -> None:
    assert price_per_1k("who-knows", PRICES) == 0.0002
    assert price_per_1k("who-knows", {}) == 0.0


@pytest.mark.parametrize("usage", [None, "x", {"prompt_tokens": "many"}])
def test_malformed_usage_is_none(usage: object) -> None:
    assert usage_from_body(usage) is None


def test_answer_gets_cost_in_usage_and_pii_filtered() -> None:
    body = {
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "mail a@b.io"}}],
        "usage": {"prompt_tokens": 1000, "completion_tokens": 1000, "total_tokens": 2000},
    }
    out, pii, acct = filter_answer(body, "chat", "llama-7b", PRICES, pii_enabled=True)
    assert out["choices"][0]["message"]["content"] == "mail [EMAIL]"
    assert pii == {"email": 1}
    assert out["usage"]["cost_usd"] == pytest.approx(0.0002)
    assert acct.usage == Usage(1000, 1000)


def test_pii_filter_can_be_disabled() -> None:
    body = {"choices": [{"index": 0, "text": "mail a@b.io"}]}
    out, pii, acct = filter_answer(body, "completion", "m", PRICES, pii_enabled=False)
    assert out["choices"][0]["text"] == "mail a@b.io"
    assert not pii and acct.usage is None
