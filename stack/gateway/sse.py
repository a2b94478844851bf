"""Server-sent events as OpenAI streams use them: `data: <json>` blocks, `data: [DONE]` last."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson

DONE = "[DONE]"
# Every streamed chunk is decoded and encoded once here: orjson does both several times faster.
_DUMPS_OPTIONS = orjson.OPT_NON_STR_KEYS


@dataclass(frozen=True)
class SseEvent:
    data: str
    event: str | None = None

    @property
    def is_done(self) -> bool:
        return self.data.strip() == DONE

    def json(self) -> Any | None:
        """The decoded payload, or None for [DONE] and payloads that are not JSON."""
        if self.is_done:
            return None
        try:
            return orjson.loads(self.data)
        except ValueError:  # orjson.JSONDecodeError is one
            return None


async def iter_sse_events(lines: AsyncIterator[str]) -> AsyncIterator[SseEvent]:
    """Group lines into events; a blank line ends one. Comments (`:`) are dropped."""
    data: list[str] = []
    event: str | None = None
    async for raw in lines:
        line = raw.rstrip("\r\n")
        if not line:
            if data:
                yield SseEvent("\n".join(data), event)
            data, event = [], None
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "data":
            data.append(value)
        elif field == "event":
            event = value
        elif field == "error":
            # llama.cpp has sent `error: {...}` lines in some versions: keep them as data.
            data.append(value)
            event = "error"
    if data:
        yield SseEvent("\n".join(data), event)


def encode_event(payload: Any) -> bytes:
    if isinstance(payload, str):
        return f"data: {payload}\n\n".encode()
    return b"data: " + orjson.dumps(payload, option=_DUMPS_OPTIONS) + b"\n\n"


def encode_done() -> bytes:
    return f"data: {DONE}\n\n".encode()
