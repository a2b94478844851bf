"""What a response cache should have answered in a load that repeats prompts, from its samples.

A repeat (`Sample.repeated`, one of the workload's pool of prompts, `Sample.prompt_id`) is
*expected* to be a hit when an earlier request with the same prompt was answered (and so stored)
before it was sent, within the cache's TTL of that store: what a cache that works answers from
its entry. The first occurrence of each prompt, a repeat sent while that first answer was still
streaming, and one sent after the entry expired are misses even for a working cache, and are
not expected. The stores are those a working cache makes: every successful answer not expected
to be a hit refills the entry (a hit stores nothing). Each run (a gate's look) is counted on its
own: a fresh seed draws fresh pool prompts, so `hot-3` of one look is not `hot-3` of the next.

Judged in `harness/verdict/cache_hits.py`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from harness.data.samples import Sample

# The gateway stores a streamed answer after its last chunk has gone out: a repeat sent within
# this long of the first answer's end may rightly find no entry yet (a Redis write, with room
# for a busy machine).
SETTLE_S = 0.1


@dataclass(frozen=True)
class CacheReuse:
    ttl_s: float
    answered: int  # successful answers, repeats or not
    hits: int  # of them, X-Cache: hit
    said: int  # of them, with an X-Cache of hit, miss or bypass
    bypass: int  # of them, X-Cache: bypass (the stack did not use its cache for them)
    repeated: int  # successful answers to a repeated prompt
    expected: int  # of them, a prompt answered earlier within the TTL: a working cache hits
    expected_hits: int  # of those, X-Cache: hit

    @property
    def expected_share(self) -> float | None:
        """The hit rate the workload's repeats allow: expected hits over every answer."""
        return self.expected / self.answered if self.answered else None

    @property
    def hit_share(self) -> float | None:
        return self.hits / self.answered if self.answered else None


def _expected_in(group: list[Sample], ttl_s: float) -> tuple[int, int]:
    """(expected, of them hits) among one prompt's requests of one run."""
    stored: list[float] = []  # when an answer went into the entry
    expected = hits = 0
    for s in sorted(group, key=lambda x: x.sent_s):
        if any(at <= s.sent_s < at + ttl_s for at in stored):
            if s.ok:
                expected += 1
                hits += (s.x_cache or "").lower() == "hit"
        elif s.ok:
            stored.append(s.done_s + SETTLE_S)
    return expected, hits


def cache_reuse(runs: Sequence[Sequence[Sample]], ttl_s: float) -> CacheReuse:
    """The repeats a cache with this TTL should have answered, over runs counted apart."""
    answered = hits = said = bypass = repeated = expected = expected_hits = 0
    for samples in runs:
        groups: dict[tuple[str, str], list[Sample]] = {}
        for s in samples:
            if s.ok:
                header = (s.x_cache or "").lower()
                answered += 1
                hits += header == "hit"
                said += header in ("hit", "miss", "bypass")
                bypass += header == "bypass"
                repeated += s.repeated
            if s.repeated:  # a chat and a completion of one prompt are two cache entries
                groups.setdefault((s.kind, s.prompt_id), []).append(s)
        for group in groups.values():
            e, h = _expected_in(group, ttl_s)
            expected += e
            expected_hits += h
    return CacheReuse(
        ttl_s=ttl_s,
        answered=answered,
        hits=hits,
        said=said,
        bypass=bypass,
        repeated=repeated,
        expected=expected,
        expected_hits=expected_hits,
    )
