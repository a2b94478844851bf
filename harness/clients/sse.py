"""Interpret an OpenAI-style response as it arrives: SSE events, each stamped with its arrival time.

An event "carries text" when any choice has non-empty `text` (completions), `delta.content`,
`delta.reasoning_content` or `delta.tool_calls` (chat). Time to first token is the arrival of the
first such event, not of the first byte: servers send a role-only chunk (and headers) early.
Prompt tokens the server took from its prefix cache: `usage.prompt_tokens_details.cached_tokens`
(OpenAI, vLLM with prompt token details on) or llama.cpp's `timings.cache_n`. llama.cpp's
`timings` (in its last chunk, with or without usage) also say how long the server itself spent
on this request: `prompt_ms` (prefill, up to the first token) and `predicted_ms` (decode).
Per SSE, an event is dispatched at the blank line that ends it; both arrive in one segment in
practice, so the stamp is the time the bytes were received.
"""

from __future__ import annotations

from typing import Any

import orjson


def _has_text(choice: dict[str, Any]) -> bool:
    if choice.get("text"):
        return True
    delta = choice.get("delta") or choice.get("message") or {}
    if not isinstance(delta, dict):
        return False
    return bool(
        delta.get("content")
        or delta.get("reasoning_content")
        or delta.get("reasoning")
        or delta.get("tool_calls")
    )


def _text(choice: dict[str, Any]) -> str:
    if isinstance(choice.get("text"), str):
        return str(choice["text"])
    delta = choice.get("delta") or choice.get("message") or {}
    content = delta.get("content") if isinstance(delta, dict) else None
    return content if isinstance(content, str) else ""


def _cached(usage: object, timings: object) -> int | None:
    details = usage.get("prompt_tokens_details") if isinstance(usage, dict) else None
    if isinstance(details, dict) and isinstance(details.get("cached_tokens"), int):
        return int(details["cached_tokens"])
    if isinstance(timings, dict) and isinstance(timings.get("cache_n"), int):
        return int(timings["cache_n"])
    return None


def _ms(value: object) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


class StreamInterpreter:
    def __init__(self, keep_text: bool = False, keep_times: bool = False) -> None:
        # The generated text is kept only when asked (a multi-turn session appends it, a probe
        # reads it), and so is when each text-carrying event arrived (a probe's streaming check).
        self.keep_text = keep_text
        self.keep_times = keep_times
        self.text: list[str] = []
        self.text_times_s: list[float] = []
        self.cached_tokens: int | None = None
        self.first_event_s: float | None = None  # the first JSON event, text or not
        self.first_text_s: float | None = None
        self.last_text_s: float | None = None
        self.gaps_ms: list[float] = []
        self.chunks = 0
        self.output_tokens: int | None = None
        self.prompt_tokens: int | None = None
        self.finish_reason: str | None = None
        # The server's own prefill and decode time of this request (llama.cpp's `timings`).
        self.server_prefill_ms: float | None = None
        self.server_decode_ms: float | None = None
        self.done = False
        self.error: str | None = None  # "stream_error" | "protocol"
        self.error_detail: str | None = None
        self._buf = b""
        self._data: list[bytes] = []
        self._event = b""

    # --- SSE framing -------------------------------------------------------------------------
    def feed(self, data: bytes, t: float) -> None:
        buf = self._buf + data
        start = 0
        while True:
            nl = buf.find(b"\n", start)
            if nl < 0:
                break
            line = buf[start:nl]
            start = nl + 1
            if line.endswith(b"\r"):
                line = line[:-1]
            self._line(line, t)
        self._buf = buf[start:]

    def end(self, t: float) -> None:
        """The body ended: a last event without its blank line still counts."""
        if self._buf:
            self._line(self._buf.rstrip(b"\r"), t)
            self._buf = b""
        if self._data:
            self._dispatch(t)

    def _line(self, line: bytes, t: float) -> None:
        if not line:
            if self._data:
                self._dispatch(t)
            self._event = b""
            return
        if line.startswith(b":"):
            return  # comment / keep-alive
        name, _, value = line.partition(b":")
        if value.startswith(b" "):
            value = value[1:]
        if name == b"data":
            self._data.append(value)
        elif name == b"event":
            self._event = value

    def _dispatch(self, t: float) -> None:
        payload = b"\n".join(self._data)
        self._data = []
        if payload.strip() == b"[DONE]":
            self.done = True
            return
        try:
            obj = orjson.loads(payload)  # 10x less CPU than json's, once per event
        except ValueError:
            self._fail("protocol", f"event is not JSON: {payload[:80]!r}")
            return
        if self._event == b"error":
            self._fail("stream_error", str(obj)[:200])
            return
        self.message(obj, t)

    # --- payloads ----------------------------------------------------------------------------
    def message(self, obj: object, t: float) -> None:
        """One chunk (streaming) or the whole response (non-streaming) arrived at t."""
        if not isinstance(obj, dict):
            self._fail("protocol", f"expected a JSON object, got {type(obj).__name__}")
            return
        if self.first_event_s is None:
            self.first_event_s = t
        if obj.get("error"):
            err = obj["error"]
            msg = err.get("message", err) if isinstance(err, dict) else err
            self._fail("stream_error", str(msg)[:200])
            return
        choices = obj.get("choices") or []
        text = False
        for ch in choices if isinstance(choices, list) else []:
            if not isinstance(ch, dict):
                continue
            text = text or _has_text(ch)
            if self.keep_text:
                self.text.append(_text(ch))
            if ch.get("finish_reason"):
                self.finish_reason = str(ch["finish_reason"])
        if text:
            self.chunks += 1
            if self.keep_times:
                self.text_times_s.append(t)
            if self.first_text_s is None:
                self.first_text_s = t
            elif self.last_text_s is not None:
                self.gaps_ms.append((t - self.last_text_s) * 1000.0)
            self.last_text_s = t
        usage, timings = obj.get("usage"), obj.get("timings")
        if (cached := _cached(usage, timings)) is not None:
            self.cached_tokens = cached
        if isinstance(timings, dict):
            self.server_prefill_ms = _ms(timings.get("prompt_ms"))
            self.server_decode_ms = _ms(timings.get("predicted_ms"))
        if isinstance(usage, dict):
            ct, pt = usage.get("completion_tokens"), usage.get("prompt_tokens")
            if isinstance(ct, int):
                self.output_tokens = ct
            if isinstance(pt, int):
                self.prompt_tokens = pt

    def _fail(self, kind: str, detail: str) -> None:
        if self.error is None:
            self.error, self.error_detail = kind, detail

    def complete(self) -> bool:
        return self.done or self.finish_reason is not None
