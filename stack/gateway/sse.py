"""Server-sent events as OpenAI streams use them: `data: <json>` blocks, `data: [DONE]` last."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson

DONE = "[DONE]"
# Every streamed chunk is decoded and encoded once here: orjson does both several times faster.
_DUMPS_OPTIONS = orjson.OPT_NON_STR_KEYS


def dumps(value: Any) -> bytes:
    """JSON bytes, by orjson; what orjson refuses but JSON allows (an integer beyond 64 bits, in
    a client's own request field) by the standard library, never a 500."""
    try:
        return orjson.dumps(value, option=_DUMPS_OPTIONS)
    except TypeError:  # orjson.JSONEncodeError is one
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True)
class SseEvent:
    data: str
    event: str | None = None

    @property
    def is_done(self) -> bool:
        return self.data.strip() == DONE

    def json(self) -> Any | None:
        """The decoded payload, or None for [DONE] and payloads that are not JSON."""
        try:
            # [DONE] is not JSON either: it comes out None here without a test of its own.
            return orjson.loads(self.data)
        except ValueError:  # orjson.JSONDecodeError is one
            return None


class SseParser:
    """Lines in, events out: a blank line ends an event. Comments (`:`) are dropped."""

    def __init__(self) -> None:
        self._data: list[str] = []
        self._event: str | None = None

    def feed(self, raw: str) -> SseEvent | None:
        """The event this line completes, if any."""
        line = raw.rstrip("\r\n")
        if not line:
            return self.end()
        if line.startswith(":"):
            return None
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "data":
            self._data.append(value)
        elif field == "event":
            self._event = value
        elif field == "error":
            # llama.cpp has sent `error: {...}` lines in some versions: keep them as data.
            self._data.append(value)
            self._event = "error"
        return None

    def end(self) -> SseEvent | None:
        """The event in progress (the stream ended without its blank line), if any."""
        event = SseEvent("\n".join(self._data), self._event) if self._data else None
        self._data, self._event = [], None
        return event


async def iter_sse_events(lines: AsyncIterator[str]) -> AsyncIterator[SseEvent]:
    parser = SseParser()
    async for raw in lines:
        event = parser.feed(raw)
        if event is not None:
            yield event
    last = parser.end()
    if last is not None:
        yield last


async def iter_sse_batches(reads: AsyncIterator[bytes]) -> AsyncIterator[list[SseEvent]]:
    """Events grouped by the network read that completed them. What arrived together is sent
    on together in one write: the busier the gateway, the more events a read holds and the fewer
    writes. Reads may cut lines (and characters) anywhere; a line has no length limit."""
    parser = SseParser()
    rest = b""
    async for chunk in reads:
        data = rest + chunk if rest else chunk
        end = data.rfind(b"\n") + 1
        rest = data[end:]
        if not end:
            continue
        # Only whole lines are decoded, so a character cut by a read waits for its end.
        lines = data[:end].decode("utf-8", "replace").split("\n")
        lines.pop()  # the empty piece after the last newline
        events = [e for e in map(parser.feed, lines) if e is not None]
        if events:
            yield events
    # The stream ended: its unterminated last line, then the event in progress.
    tail = [parser.feed(rest.decode("utf-8", "replace")) if rest else None, parser.end()]
    events = [e for e in tail if e is not None]
    if events:
        yield events


def encode_event(payload: Any) -> bytes:
    if isinstance(payload, str):
        return f"data: {payload}\n\n".encode()
    return b"data: " + dumps(payload) + b"\n\n"


def encode_done() -> bytes:
    return f"data: {DONE}\n\n".encode()
