"""Output filtering (PRACTICES.md section 6): e-mail, phone and US SSN replaced by placeholders.

The regexes are the ones of PRACTICES.md, applied in the same order (e-mail, phone, SSN).

Streams: a match can straddle two SSE deltas ("555-12" + "3-4567"). No match can contain a
character outside [\\w.@-], so text up to the last such "safe" character can be filtered and sent
at once, and only the trailing run of word-like characters is held back for the next delta.
Filtering the pieces gives exactly what filtering the whole text would (tests check this with
hypothesis), because every \\b at a cut sees a non-word character or the string edge either way.
"""

from __future__ import annotations

import re
from collections import Counter

PATTERNS: tuple[tuple[str, re.Pattern[str], str], ...] = (
    ("email", re.compile(r"\b[\w.-]+@[\w.-]+\.\w+\b"), "[EMAIL]"),
    ("phone", re.compile(r"\b\d{3}[-.]?\d{3}[-.]?\d{4}\b"), "[PHONE]"),
    ("ssn", re.compile(r"\b\d{3}-\d{2}-\d{4}\b"), "[SSN]"),
)

# Last character that no PII match can contain: everything up to it is safe to release.
_LAST_SAFE = re.compile(r"[^\w.@-](?=[\w.@-]*\Z)")

# A run of word-like characters longer than this is released anyway, so a model that never
# emits a separator cannot stall a stream; only an address longer than this could slip through.
MAX_HOLD_CHARS = 2048


def redact(text: str) -> tuple[str, Counter[str]]:
    """Return the filtered text and how many replacements of each kind were made."""
    counts: Counter[str] = Counter()
    for kind, pattern, placeholder in PATTERNS:
        text, n = pattern.subn(placeholder, text)
        if n:
            counts[kind] += n
    return text, counts


class StreamRedactor:
    """Filters text arriving in pieces; `feed` returns what may be sent now, `flush` the rest."""

    def __init__(self, max_hold_chars: int = MAX_HOLD_CHARS) -> None:
        self._held = ""
        self._max_hold = max_hold_chars
        self.counts: Counter[str] = Counter()

    @property
    def held(self) -> str:
        return self._held

    def feed(self, piece: str) -> str:
        text = self._held + piece
        m = _LAST_SAFE.search(text)
        cut = m.end() if m else 0
        if len(text) - cut > self._max_hold:
            cut = len(text)
        ready, self._held = text[:cut], text[cut:]
        return self._filter(ready)

    def flush(self) -> str:
        ready, self._held = self._held, ""
        return self._filter(ready)

    def _filter(self, text: str) -> str:
        if not text:
            return ""
        out, counts = redact(text)
        self.counts.update(counts)
        return out
