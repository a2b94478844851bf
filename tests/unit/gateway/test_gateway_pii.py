"""PII output filter: PRACTICES.md regexes, and stream filtering equal to whole-text filtering."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.pii import StreamRedactor, redact


@pytest.mark.parametrize(
    ("text", "expected", "kind"),
    [
        ("write to jane.doe@example.com today", "write to [EMAIL] today", "email"),
        ("call 555-123-4567 now", "call [PHONE] now", "phone"),
        ("call 555.123.4567 now", "call [PHONE] now", "phone"),
        ("call 5551234567 now", "call [PHONE] now", "phone"),
        ("ssn 123-45-6789.", "ssn [SSN].", "ssn"),
    ],
)
def test_each_kind_is_replaced_and_counted(text: str, expected: str, kind: str) -> None:
    out, counts = redact(text)
    assert out == expected
    assert counts == {kind: 1}


def test_text_without_pii_is_unchanged() -> None:
    text = "The answer is 42, see section 3.1 of RFC 2616."
    assert redact(text) == (text, {})


def test_pattern_split_across_stream_chunks() -> None:
    r = StreamRedactor()
    pieces = ["Contact me at jo", "hn@exam", "ple.com or 555-12", "3-4567 ok"]
    out = "".join(r.feed(p) for p in pieces) + r.flush()
    assert out == "Contact me at [EMAIL] or [PHONE] ok"
    assert r.counts == {"email": 1, "phone": 1}


def test_only_the_unfinished_word_is_held_back() -> None:
    r = StreamRedactor()
    assert r.feed("hello wor") == "hello "
    assert r.held == "wor"
    assert r.feed("ld, then") == "world, "


def test_a_long_run_without_separators_is_released() -> None:
    r = StreamRedactor(max_hold_chars=10)
    assert r.feed("a" * 11) == "a" * 11
    assert r.held == ""


_alphabet = st.sampled_from([*"ab09@.-_ \n,;:()x5", "555-123-4567", "a.b@c.de", "123-45-6789"])
_texts = st.lists(_alphabet, max_size=40).map("".join)


@given(text=_texts, cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=12))
def test_stream_filtering_equals_filtering_the_whole_text(text: str, cuts: list[int]) -> None:
    points = sorted({c % (len(text) + 1) for c in cuts})
    pieces = [text[a:b] for a, b in zip([0, *points], [*points, len(text)], strict=True)]
    r = StreamRedactor()
    streamed = "".join(r.feed(p) for p in pieces) + r.flush()
    whole, counts = redact(text)
    assert streamed == whole
    assert r.counts == counts


@given(st.text(max_size=200))
def test_filtering_is_idempotent(text: str) -> None:
    once, _ = redact(text)
    twice, counts = redact(once)
    assert twice == once
    assert not counts


@given(st.text(max_size=200))
def test_stream_equivalence_on_arbitrary_unicode(text: str) -> None:
    r = StreamRedactor()
    streamed = "".join(r.feed(ch) for ch in text) + r.flush()
    assert streamed == redact(text)[0]
