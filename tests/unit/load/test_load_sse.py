"""The SSE interpreter: text events, usage, finish, errors; any split of the byte stream."""

from __future__ import annotations

import itertools
import json

from hypothesis import given
from hypothesis import strategies as st

from harness.clients.sse import StreamInterpreter


def chunk(
    delta: dict[str, object] | None = None,
    finish: str | None = None,
    usage: dict[str, int] | None = None,
) -> bytes:
    obj: dict[str, object] = {"object": "chat.completion.chunk", "usage": usage}
    obj["choices"] = (
        [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    )
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


STREAM = (
    chunk({"role": "assistant"})
    + b": keep-alive comment\n\n"
    + chunk({"content": "Hel"})
    + chunk({"content": "lo"})
    + chunk({"content": ""})  # empty deltas carry no token
    + chunk({}, finish="length")
    + chunk(None, usage={"prompt_tokens": 5, "completion_tokens": 2})
    + b"data: [DONE]\n\n"
)


def test_first_token_is_the_first_text_event_not_the_role_chunk() -> None:
    it = StreamInterpreter()
    parts = STREAM.split(b"\n\n")
    for i, p in enumerate(parts):
        it.feed(p + b"\n\n", t=float(i))
    assert it.first_text_s == 2.0  # part 0 role, part 1 comment
    assert it.gaps_ms == [1000.0]
    assert it.chunks == 2 and it.output_tokens == 2 and it.prompt_tokens == 5
    assert it.finish_reason == "length" and it.done and it.complete() and it.error is None


@given(st.lists(st.integers(1, len(STREAM) - 1), max_size=12))
def test_any_split_of_the_bytes_gives_the_same_result(cuts: list[int]) -> None:
    bounds = [0, *sorted(set(cuts)), len(STREAM)]
    it = StreamInterpreter()
    for a, b in itertools.pairwise(bounds):
        it.feed(STREAM[a:b], t=float(a))
    it.end(t=9e9)
    assert it.chunks == 2 and it.output_tokens == 2 and it.done and it.error is None


def test_crlf_lines_and_completions_text() -> None:
    it = StreamInterpreter()
    it.feed(b'data: {"choices":[{"text":"a","finish_reason":null}]}\r\n\r\n', 1.0)
    it.feed(b'data: {"choices":[{"text":"b","finish_reason":"stop"}]}\r\n\r\n', 1.5)
    assert it.chunks == 2 and it.gaps_ms == [500.0] and it.finish_reason == "stop"
    assert it.complete() and not it.done


def test_error_object_in_stream() -> None:
    it = StreamInterpreter()
    it.feed(b'data: {"error": {"message": "overloaded", "code": 503}}\n\n', 1.0)
    assert (
        it.error == "stream_error"
        and it.error_detail is not None
        and "overloaded" in it.error_detail
    )


def test_error_event_type_and_garbage() -> None:
    it = StreamInterpreter()
    it.feed(b'event: error\ndata: {"detail": "boom"}\n\n', 1.0)
    assert it.error == "stream_error"
    bad = StreamInterpreter()
    bad.feed(b"data: {not json\n\n", 1.0)
    assert bad.error == "protocol"


def test_last_event_without_blank_line_counts_at_end() -> None:
    it = StreamInterpreter()
    it.feed(b'data: {"choices":[{"delta":{"content":"x"}}]}', 1.0)
    assert it.chunks == 0
    it.end(2.0)
    assert it.chunks == 1 and it.first_text_s == 2.0 and not it.complete()


def test_whole_json_response() -> None:
    it = StreamInterpreter()
    it.message(
        {
            "choices": [{"message": {"content": "hi"}, "finish_reason": "stop"}],
            "usage": {"completion_tokens": 3},
        },
        4.0,
    )
    assert it.first_text_s == 4.0 and it.output_tokens == 3 and it.complete()


def test_reasoning_and_tool_calls_count_as_output() -> None:
    it = StreamInterpreter()
    it.feed(chunk({"reasoning_content": "think"}), 1.0)
    it.feed(chunk({"tool_calls": [{"index": 0, "function": {"arguments": "{"}}]}), 2.0)
    assert it.chunks == 2


def test_first_event_and_the_servers_own_timings_from_llama_cpps_last_chunk() -> None:
    """llama.cpp's last chunk (with usage, or the finish chunk without) carries `timings`: the
    server's own prefill (prompt_ms) and decode (predicted_ms) of this request."""
    last = {
        "choices": [],
        "usage": {"completion_tokens": 4, "prompt_tokens": 31},
        "timings": {"cache_n": 3, "prompt_n": 28, "prompt_ms": 364.5, "predicted_ms": 81},
    }
    it = StreamInterpreter()
    it.feed(chunk({"role": "assistant", "content": None}), t=1.0)
    it.feed(chunk({"content": "Hi"}), t=1.5)
    it.feed(b"data: " + json.dumps(last).encode() + b"\n\ndata: [DONE]\n\n", t=2.0)
    assert it.first_event_s == 1.0 and it.first_text_s == 1.5
    assert it.server_prefill_ms == 364.5 and it.server_decode_ms == 81.0
    assert it.cached_tokens == 3
    plain = StreamInterpreter()
    plain.feed(STREAM, t=0.0)
    assert plain.server_prefill_ms is None and plain.server_decode_ms is None
