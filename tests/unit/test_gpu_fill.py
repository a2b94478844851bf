"""Filling a card to a share of its memory, on made-up cards (`FakeCard`): the real allocations
need a GPU (`harness gpu-check` runs them there)."""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.faults.gpu_fill import fill

MIB = 1 << 20


@dataclass
class FakeCard:
    """`total` bytes, `others` held by other processes; refuses what would pass `capacity`."""

    total: int
    others: int = 0
    capacity: int | None = None
    held: list[int] = field(default_factory=list)

    def memory(self) -> tuple[int, int]:
        return self.others + sum(self.held), self.total

    def allocate(self, size: int) -> bool:
        if self.memory()[0] + size > (self.capacity or self.total):
            return False
        self.held.append(size)
        return True


def test_fills_to_the_share_counting_what_others_hold() -> None:
    card = FakeCard(total=80 * 1024 * MIB, others=3 * 1024 * MIB)
    used = fill(card, 0.975, chunk=1024 * MIB, min_chunk=64 * MIB)
    assert used >= 0.975 * card.total
    # Not much past it: the last step asks only for what is left (at least one small chunk).
    assert used < 0.975 * card.total + 64 * MIB
    assert max(card.held) == 1024 * MIB


def test_a_refused_chunk_is_halved_and_the_fill_stops_at_what_the_card_gives() -> None:
    card = FakeCard(total=1024 * MIB, capacity=900 * MIB)
    used = fill(card, 0.975, chunk=512 * MIB, min_chunk=64 * MIB)
    # 512, then each refusal halves the chunk: 256, 128; past 896 even 64 MiB is refused.
    assert used == 896 * MIB and card.held == [512 * MIB, 256 * MIB, 128 * MIB]


def test_an_already_full_card_gets_nothing_more() -> None:
    card = FakeCard(total=1000 * MIB, others=990 * MIB)
    assert fill(card, 0.975) == 990 * MIB and card.held == []
