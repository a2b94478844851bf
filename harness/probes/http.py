"""Small helpers for probing an OpenAI-compatible endpoint with exact requests."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from harness import wire
from harness.clients.http import http_stream
from harness.clients.sse import StreamInterpreter


def auth_headers(api_key: str | None) -> dict[str, str]:
    """The API key as the gated stack wants it (harness.wire)."""
    return wire.current().auth(api_key)


def chat_body(
    prompt: str, *, max_tokens: int = 16, stream: bool = False, **extra: Any
) -> dict[str, Any]:
    return {
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": max_tokens,
        "stream": stream,
        **extra,
    }


def unique_prompt(text: str) -> str:
    """A prompt no earlier request used, so caches cannot answer it."""
    return f"{text} (probe {uuid.uuid4().hex[:8]})"


@dataclass
class StreamResult:
    status: int
    headers: dict[str, str]
    text: str = ""
    content_chunks: int = 0  # events carrying generated text (as the load counts them)
    ttft_s: float | None = None
    total_s: float = 0.0
    error_body: str = ""
    # When each content chunk arrived, in seconds from the request's start.
    chunk_times_s: list[float] = field(default_factory=list)
    # The stream's own failure, as the load classifies it: "stream_error" | "protocol".
    stream_error: str | None = None


def stream_chat(
    base_url: str, api_key: str | None, body: dict[str, Any], timeout_s: float = 60.0
) -> StreamResult:
    """POST a streamed chat completion; collect the text, chunk count and time to first token."""
    t0 = time.perf_counter()
    with http_stream(
        "POST",
        f"{base_url}/v1/chat/completions",
        json={**body, "stream": True},
        headers=auth_headers(api_key),
        timeout=timeout_s,
    ) as r:
        result = StreamResult(
            status=r.status_code, headers={k.lower(): v for k, v in r.headers.items()}
        )
        if r.status_code != 200:
            result.error_body = r.read().decode(errors="replace")[:500]
            result.total_s = time.perf_counter() - t0
            return result
        # The load's own reader (clients/sse.py): one definition of a chunk and of its time.
        interp = StreamInterpreter(keep_text=True, keep_times=True)
        for data in r.iter_bytes():
            interp.feed(data, time.perf_counter() - t0)
        interp.end(time.perf_counter() - t0)
    result.total_s = time.perf_counter() - t0
    result.text = "".join(interp.text)
    result.content_chunks = interp.chunks
    result.chunk_times_s = interp.text_times_s
    result.ttft_s = interp.first_text_s
    result.stream_error = interp.error
    return result
