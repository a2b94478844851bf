"""SSE post-processing: PII across deltas, usage chunk handling, cost, flush at the end."""

from __future__ import annotations

import json

from gateway.postprocess import StreamFilter
from gateway.sse import SseEvent


def chat_chunk(content: str | None, finish: str | None = None) -> SseEvent:
    delta = {} if content is None else {"content": content}
    payload = {
        "id": "c1",
        "object": "chat.completion.chunk",
        "model": "m",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return SseEvent(json.dumps(payload))


def usage_chunk() -> SseEvent:
    usage = {"prompt_tokens": 1000, "completion_tokens": 1000, "total_tokens": 2000}
    return SseEvent(json.dumps({"id": "c1", "choices": [], "usage": usage}))


def make(wants_usage: bool = False) -> StreamFilter:
    return StreamFilter("chat", "m", {"default": 0.001}, True, wants_usage)


def sent_text(chunks: list[bytes]) -> str:
    text = ""
    for c in chunks:
        data = c.decode().removeprefix("data: ").strip()
        if data == "[DONE]":
            continue
        for choice in json.loads(data).get("choices", []):
            text += choice.get("delta", {}).get("content") or ""
    return text


def run(f: StreamFilter, events: list[SseEvent]) -> list[bytes]:
    out: list[bytes] = []
    for e in events:
        out.extend(f.process(e))
    out.extend(f.finish())
    return out


def test_email_split_across_deltas_is_filtered() -> None:
    f = make()
    out = run(
        f,
        [
            chat_chunk("Mail jo"),
            chat_chunk("hn@exa"),
            chat_chunk("mple.com"),
            chat_chunk(None, "stop"),
            usage_chunk(),
            SseEvent("[DONE]"),
        ],
    )
    assert sent_text(out) == "Mail [EMAIL]"
    assert f.pii_counts == {"email": 1}
    assert f.text_of(0) == "Mail [EMAIL]"
    assert f.finish_reasons == {0: "stop"}
    assert out[-1] == b"data: [DONE]\n\n"


def test_usage_chunk_dropped_unless_asked_but_counted() -> None:
    f = make(wants_usage=False)
    out = run(f, [chat_chunk("hi"), chat_chunk(None, "stop"), usage_chunk(), SseEvent("[DONE]")])
    assert not any(b'"usage"' in c for c in out)
    acct = f.accounting()
    assert acct.usage is not None and acct.usage.total_tokens == 2000
    assert abs(acct.cost_usd - 0.002) < 1e-12 and not acct.estimated

    f = make(wants_usage=True)
    out = run(f, [chat_chunk("hi"), chat_chunk(None, "stop"), usage_chunk(), SseEvent("[DONE]")])
    usage = [json.loads(c.decode()[6:])["usage"] for c in out if b'"usage"' in c]
    assert usage and abs(usage[0]["cost_usd"] - 0.002) < 1e-12


def test_tokens_counted_from_chunks_without_usage() -> None:
    f = make()
    run(f, [chat_chunk("a "), chat_chunk("b "), chat_chunk("c"), SseEvent("[DONE]")])
    acct = f.accounting()
    assert acct.estimated and acct.usage is not None and acct.usage.completion_tokens == 3


def test_held_text_is_sent_when_the_stream_ends_without_done() -> None:
    f = make()
    out = run(f, [chat_chunk("call 555-123-"), chat_chunk("4567")])
    assert sent_text(out) == "call [PHONE]"


def test_error_event_is_passed_through_and_flagged() -> None:
    f = make()
    out = run(f, [SseEvent(json.dumps({"error": {"message": "boom"}}))])
    assert f.error and b"boom" in out[0]
