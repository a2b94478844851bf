"""What happens to a model's answer on its way out: PII filtering, usage and cost.

`filter_answer` handles a complete JSON answer; `StreamFilter` handles an SSE stream event by
event, holding back only the tail that might be the start of an address or number (see pii.py),
and remembers the filtered text so a finished stream can be stored in the cache.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.cost import Usage, request_cost, usage_from_body
from gateway.pii import StreamRedactor, redact
from gateway.sse import SseEvent, encode_done, encode_event


@dataclass
class Accounting:
    """Tokens and cost of one answer; `estimated` when counted from chunks (no usage sent)."""

    usage: Usage | None = None
    cost_usd: float = 0.0
    estimated: bool = False


def filter_answer(
    body: Any,
    endpoint: str,
    model: str,
    prices: Mapping[str, float],
    pii_enabled: bool,
) -> tuple[Any, Counter[str], Accounting]:
    """Filter PII in every choice and add `usage.cost_usd`; returns the body changed in place."""
    counts: Counter[str] = Counter()
    acct = Accounting()
    if not isinstance(body, dict):
        return body, counts, acct
    for choice in body.get("choices") or []:
        if not isinstance(choice, dict):
            continue
        if pii_enabled:
            holder, key = _text_slot(choice, endpoint, delta=False)
            if holder is not None and isinstance(holder.get(key), str):
                holder[key], found = redact(holder[key])
                counts.update(found)
    usage = usage_from_body(body.get("usage"))
    if usage is not None:
        acct.usage = usage
        acct.cost_usd = request_cost(usage, model, prices)
        body["usage"]["cost_usd"] = round(acct.cost_usd, 10)
    return body, counts, acct


def _text_slot(choice: dict[str, Any], endpoint: str, delta: bool) -> tuple[Any, str]:
    """The dict and key holding a choice's text: message/delta.content (chat) or text."""
    if endpoint == "chat":
        holder = choice.get("delta" if delta else "message")
        return (holder if isinstance(holder, dict) else None), "content"
    return choice, "text"


@dataclass
class StreamFilter:
    endpoint: str
    model: str
    prices: Mapping[str, float]
    pii_enabled: bool
    client_wants_usage: bool
    redactors: dict[int, StreamRedactor] = field(default_factory=dict)
    texts: dict[int, list[str]] = field(default_factory=dict)
    finish_reasons: dict[int, str | None] = field(default_factory=dict)
    usage_body: dict[str, Any] | None = None
    content_chunks: int = 0
    emitted_chars: int = 0  # filtered text sent so far (TTFT is the first time it moves)
    saw_done: bool = False
    error: str | None = None
    _last_base: dict[str, Any] = field(default_factory=dict)

    @property
    def pii_counts(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for r in self.redactors.values():
            total.update(r.counts)
        return total

    def text_of(self, index: int) -> str:
        return "".join(self.texts.get(index, []))

    def process(self, event: SseEvent) -> list[bytes]:
        """Bytes to send for one upstream event (possibly none)."""
        payload = event.json()
        if payload is None and event.is_done:
            self.saw_done = True
            return [*self._flush_all(), encode_done()]
        if not isinstance(payload, dict):
            return [f"data: {event.data}\n\n".encode()]
        if "error" in payload or event.event == "error":
            self.error = str(payload.get("error") or payload)[:300]
            return [encode_event(payload)]
        if self.pii_enabled:  # what a flushed tail's own event is built on
            self._last_base = {
                k: payload[k] for k in ("id", "object", "created", "model") if k in payload
            }
        for choice in payload.get("choices") or []:
            if isinstance(choice, dict):
                self._process_choice(choice)
        usage = payload.get("usage")
        if isinstance(usage, dict):
            self.usage_body = usage
            acct = self.accounting()
            usage["cost_usd"] = round(acct.cost_usd, 10)
            if not payload.get("choices") and not self.client_wants_usage:
                return []  # the gateway asked for this chunk, the client did not
        return [encode_event(payload)]

    def finish(self) -> list[bytes]:
        """Called when the upstream stream ended; sends held text if [DONE] never came."""
        if self.saw_done:
            return []
        return self._flush_all()

    def accounting(self) -> Accounting:
        usage = usage_from_body(self.usage_body)
        estimated = False
        if usage is None:
            # No usage from upstream: one content chunk is one token for llama.cpp and vLLM.
            usage, estimated = Usage(0, self.content_chunks), True
        return Accounting(usage, request_cost(usage, self.model, self.prices), estimated)

    def _process_choice(self, choice: dict[str, Any]) -> None:
        idx = int(choice.get("index") or 0)
        holder, key = _text_slot(choice, self.endpoint, delta=True)
        piece = holder.get(key) if holder is not None else None
        text = piece if isinstance(piece, str) else ""
        if text:
            self.content_chunks += 1
        if self.pii_enabled:
            redactor = self.redactors.setdefault(idx, StreamRedactor())
            out = redactor.feed(text)
            if choice.get("finish_reason") is not None:
                out += redactor.flush()
        else:
            out = text
        if holder is not None and (isinstance(piece, str) or out):
            holder[key] = out
        elif out and self.endpoint == "chat":
            choice["delta"] = {"content": out}
        self.texts.setdefault(idx, []).append(out)
        self.emitted_chars += len(out)
        if choice.get("finish_reason") is not None:
            self.finish_reasons[idx] = choice["finish_reason"]

    def _flush_all(self) -> list[bytes]:
        out: list[bytes] = []
        for idx, redactor in self.redactors.items():
            rest = redactor.flush()
            if not rest:
                continue
            self.texts.setdefault(idx, []).append(rest)
            self.emitted_chars += len(rest)
            if self.endpoint == "chat":
                choice: dict[str, Any] = {"index": idx, "delta": {"content": rest}}
            else:
                choice = {"index": idx, "text": rest}
            choice["finish_reason"] = None
            out.append(encode_event({**self._last_base, "choices": [choice]}))
        return out
