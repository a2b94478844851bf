"""SSE parsing of upstream streams and X-Request-Id handling."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from gateway.request_id import pick_request_id
from gateway.sse import SseEvent, iter_sse_events


async def _lines(items: list[str]) -> AsyncIterator[str]:
    for item in items:
        yield item


def parse(lines: list[str]) -> list[SseEvent]:
    async def collect() -> list[SseEvent]:
        return [e async for e in iter_sse_events(_lines(lines))]

    return asyncio.run(collect())


def test_events_are_split_on_blank_lines() -> None:
    events = parse(['data: {"a": 1}', "", ": keep-alive comment", "", "data: [DONE]", ""])
    assert [e.data for e in events] == ['{"a": 1}', "[DONE]"]
    assert events[0].json() == {"a": 1}
    assert events[1].is_done and events[1].json() is None


def test_multi_line_data_and_crlf() -> None:
    events = parse(["data: line1\r\n", "data: line2\r\n", "\r\n"])
    assert events == [SseEvent("line1\nline2")]


def test_error_lines_and_a_last_event_without_blank_line() -> None:
    events = parse(['error: {"message": "boom"}', "", 'data: {"x": 2}'])
    assert events[0].event == "error" and events[0].json() == {"message": "boom"}
    assert events[1].json() == {"x": 2}


def test_request_id_is_kept_when_well_formed() -> None:
    assert pick_request_id("abc-123_x.y:z") == "abc-123_x.y:z"
    for bad in (None, "", "has space", "x" * 129, 'quote"', "new\nline"):
        generated = pick_request_id(bad)
        assert generated != bad and len(generated) == 36


def test_json_the_fast_encoder_refuses_is_still_encoded() -> None:
    """A client's own field with an integer beyond 64 bits (found by schemathesis) is passed
    upstream as JSON, not turned into a 500."""
    import json

    from gateway.sse import dumps, encode_event

    body = {"": -9223372036854775809, "prompt": "hi", "n": 1}
    assert json.loads(dumps(body)) == body
    assert json.loads(encode_event(body)[len(b"data: ") :]) == body
    assert dumps({"a": 1}) == b'{"a":1}'
