"""Cost accounting (PRACTICES.md section 7): USD per 1K tokens, prompt plus completion."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


def price_per_1k(model: str, prices: Mapping[str, float]) -> float:
    return prices.get(model, prices.get("default", 0.0))


def request_cost(usage: Usage, model: str, prices: Mapping[str, float]) -> float:
    return usage.total_tokens / 1000 * price_per_1k(model, prices)


def usage_from_body(usage: Any) -> Usage | None:
    """Read an OpenAI `usage` object; None when absent or malformed."""
    if not isinstance(usage, dict):
        return None
    try:
        prompt = int(usage.get("prompt_tokens") or 0)
        completion = int(usage.get("completion_tokens") or 0)
    except (TypeError, ValueError):
        return None
    return Usage(max(prompt, 0), max(completion, 0))
