"""Streamed events grouped by the network read that completed them (one write each)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from gateway.sse import iter_sse_batches


async def _reads(reads: list[bytes]) -> AsyncIterator[bytes]:
    for chunk in reads:
        yield chunk


def batches(reads: list[bytes]) -> list[list[str]]:
    async def collect() -> list[list[str]]:
        return [[e.data for e in b] async for b in iter_sse_batches(_reads(reads))]

    return asyncio.run(collect())


def test_events_of_one_read_stay_together_and_a_split_event_waits_for_its_end() -> None:
    reads = [
        b"data: a\n\ndata: b\n\n",  # two whole events in one read
        b"data: c\n",  # an event cut by the read boundary...
        b"\n: comment\ndata: [DONE]\n\n",  # ...completed by the next read
        b"",
    ]
    assert batches(reads) == [["a", "b"], ["c", "[DONE]"]]


def test_a_line_cut_by_reads_is_joined_whole() -> None:
    reads = [b"da", b'ta: {"x":', b" 1}", b"\r\n\r", b"\n"]
    assert batches(reads) == [['{"x": 1}']]


def test_a_character_cut_by_a_read_is_decoded_whole() -> None:
    word = "caf\u00e9".encode()
    assert batches([b"data: " + word[:-1], word[-1:] + b"\n\n"]) == [["caf\u00e9"]]


def test_an_event_without_its_blank_line_is_still_delivered_at_the_end() -> None:
    assert batches([b"data: a\n\n", b"data: tail\n"]) == [["a"], ["tail"]]
    assert batches([b"data: a\n\n", b"data: tail"]) == [["a"], ["tail"]]  # no newline either
