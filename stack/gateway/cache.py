"""Response cache in Redis (PRACTICES.md section 4), shared by all replicas.

Key: SHA-256 (not MD5) over everything that changes the answer: the endpoint, the model that
answers (the routed pool's), and every request parameter except those that only change delivery
(`stream`, `stream_options`, `user`). Values are the filtered, non-streamed answer as JSON; a
streamed request is answered from it as SSE, so streamed and plain requests share entries.

Only deterministic requests are cached by default: `temperature` must be 0. llama.cpp samples at
0.8 when temperature is absent, so an absent temperature is not deterministic.
Requests asking for logprobs, tools or several choices are not cached (the stream rebuilt from an
entry would not carry them).
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

from gateway.redis_store import RedisStore
from gateway.sse import encode_done, encode_event

KEY_PREFIX = "llmcache:v1:"
DELIVERY_ONLY_PARAMS = frozenset({"stream", "stream_options", "user", "model"})
UNCACHEABLE_PARAMS = ("logprobs", "top_logprobs", "tools", "functions", "n_probs")


def cache_key(endpoint: str, model: str, body: dict[str, Any]) -> str:
    params = {k: v for k, v in body.items() if k not in DELIVERY_ONLY_PARAMS and v is not None}
    material = json.dumps(
        {"endpoint": endpoint, "model": model, "params": params},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )
    return KEY_PREFIX + hashlib.sha256(material.encode()).hexdigest()


def bypass_reason(body: dict[str, Any], only_deterministic: bool) -> str | None:
    """Why this request must not use the cache, or None when it may."""
    temperature = body.get("temperature")
    if only_deterministic and (temperature is None or temperature != 0):
        return "nondeterministic"
    if any(body.get(p) for p in UNCACHEABLE_PARAMS) or (body.get("n") or 1) > 1:
        return "unsupported_params"
    return None


class ResponseCache:
    def __init__(self, store: RedisStore, ttl_s: int) -> None:
        self._store = store
        self._ttl_s = ttl_s

    async def get(self, key: str) -> dict[str, Any] | None:
        """The cached answer or None; RedisUnavailable propagates for the caller to count."""
        return decode_entry(await self._store.run(lambda r: r.get(key)))

    async def set(self, key: str, answer: dict[str, Any]) -> None:
        data = json.dumps(answer, separators=(",", ":"))
        await self._store.run(lambda r: r.set(key, data, ex=self._ttl_s))


def decode_entry(raw: bytes | str | None) -> dict[str, Any] | None:
    """A stored answer, or None for no entry or one that is not an answer."""
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def answer_from_stream(
    endpoint: str,
    model: str,
    texts: dict[int, str],
    finish_reasons: dict[int, str | None],
    usage: dict[str, Any] | None,
) -> dict[str, Any]:
    """The non-streamed answer a streamed one amounts to, for storing in the cache."""
    choices: list[dict[str, Any]] = []
    for i in sorted(texts):
        choice: dict[str, Any] = {"index": i, "finish_reason": finish_reasons.get(i)}
        if endpoint == "chat":
            choice["message"] = {"role": "assistant", "content": texts[i]}
        else:
            choice["text"] = texts[i]
        choices.append(choice)
    return {
        "id": _new_id(endpoint),
        "object": "chat.completion" if endpoint == "chat" else "text_completion",
        "created": int(time.time()),
        "model": model,
        "choices": choices,
        "usage": _plain_usage(usage),
    }


def stream_from_answer(
    endpoint: str, answer: dict[str, Any], include_usage: bool
) -> Iterator[bytes]:
    """Replay a cached answer as SSE: one content chunk and one finish chunk per choice."""
    chat = endpoint == "chat"
    obj = "chat.completion.chunk" if chat else "text_completion"
    base = {
        "id": answer.get("id") or _new_id(endpoint),
        "object": obj,
        "created": int(time.time()),
        "model": answer.get("model"),
    }
    for choice in answer.get("choices") or []:
        idx = choice.get("index", 0)
        if chat:
            content = (choice.get("message") or {}).get("content") or ""
            first = {"index": idx, "delta": {"role": "assistant", "content": content}}
            last = {"index": idx, "delta": {}}
        else:
            first = {"index": idx, "text": choice.get("text") or ""}
            last = {"index": idx, "text": ""}
        yield encode_event({**base, "choices": [{**first, "finish_reason": None}]})
        finish = choice.get("finish_reason") or "stop"
        yield encode_event({**base, "choices": [{**last, "finish_reason": finish}]})
    if include_usage:
        yield encode_event({**base, "choices": [], "usage": answer.get("usage")})
    yield encode_done()


def _plain_usage(usage: dict[str, Any] | None) -> dict[str, Any] | None:
    if usage is None:
        return None
    return {k: v for k, v in usage.items() if k != "cost_usd"}


def _new_id(endpoint: str) -> str:
    return ("chatcmpl-" if endpoint == "chat" else "cmpl-") + uuid.uuid4().hex
