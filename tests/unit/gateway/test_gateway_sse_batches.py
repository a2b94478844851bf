"""Streamed events grouped by the network read that completed them (one write each)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from gateway.sse import iter_sse_batches


async def _reads(reads: list[list[str]]) -> AsyncIterator[list[str]]:
    for lines in reads:
        yield lines


def batches(reads: list[list[str]]) -> list[list[str]]:
    async def collect() -> list[list[str]]:
        return [[e.data for e in b] async for b in iter_sse_batches(_reads(reads))]

    return asyncio.run(collect())


def test_events_of_one_read_stay_together_and_a_split_event_waits_for_its_end() -> None:
    reads = [
        ["data: a", "", "data: b", ""],  # two whole events in one read
        ["data: c"],  # an event cut by the read boundary...
        ["", ": comment", "data: [DONE]", ""],  # ...completed by the next read
        [],
    ]
    assert batches(reads) == [["a", "b"], ["c", "[DONE]"]]


def test_an_event_without_its_blank_line_is_still_delivered_at_the_end() -> None:
    assert batches([["data: a", ""], ["data: tail"]]) == [["a"], ["tail"]]
