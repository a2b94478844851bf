"""The fate of each request of a chaos experiment, from its sample alone, and the counts per
phase and for the requests in flight when the fault started and ended."""

from __future__ import annotations

import json

import pytest

from harness.data.samples import STREAM_ENDED_SILENTLY, Sample
from harness.measure.fates import FATES, fate, fate_table, in_flight_at


def s(**kw: object) -> Sample:
    base: dict[str, object] = dict(
        worker=0,
        seq=0,
        kind="chat",
        tenant="t",
        prompt_id="p",
        repeated=False,
        intended_s=None,
        sent_s=0.0,
        e2e_ms=1000.0,
        status=200,
        x_served_by="primary",
    )
    return Sample(**{**base, **kw})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("sample", "want"),
    [
        (s(), "completed"),
        (s(x_served_by="cache"), "completed"),
        (s(x_served_by=None), "completed"),
        (s(x_served_by="fallback"), "failed_over"),
        (s(status=503, error="http", x_served_by="degraded"), "failed_over"),
        (s(error="stream_error", ttft_ms=30.0), "error_in_stream"),
        (s(error="incomplete", error_detail=STREAM_ENDED_SILENTLY, ttft_ms=30.0), "cut_silently"),
        # A silent end on the fallback pool is still a silent end.
        (
            s(error="incomplete", error_detail=STREAM_ENDED_SILENTLY, x_served_by="fallback"),
            "cut_silently",
        ),
        # A connection dropped mid-body: any HTTP client sees that one fail.
        (
            s(error="incomplete", error_detail="connection closed before the response ended"),
            "failed",
        ),
        (s(status=429, error="http", retry_after="1"), "refused"),
        (s(status=503, error="http"), "refused"),
        (s(status=0, error="timeout"), "hung"),
        (s(status=500, error="http"), "failed"),
        (s(status=0, error="connect"), "failed"),
        (s(error="protocol"), "failed"),
        (s(status=0, error="unfinished"), "failed"),
    ],
)
def test_each_request_has_one_fate(sample: Sample, want: str) -> None:
    assert fate(sample) == want
    assert want in FATES


def test_in_flight_means_sent_before_the_instant_and_done_after_it() -> None:
    r = s(sent_s=10.0, e2e_ms=2000.0)  # 10 s to 12 s
    assert in_flight_at(r, 11.0)
    assert not in_flight_at(r, 10.0) and not in_flight_at(r, 12.0)
    assert not in_flight_at(r, 9.0) and not in_flight_at(r, 13.0)


def test_fates_are_counted_per_phase_and_for_the_streams_in_flight_at_the_fault() -> None:
    # The run starts at 0, the fault spans [10, 20).
    samples = [
        s(seq=1, intended_s=1.0, sent_s=1.0),  # before
        s(
            seq=2,
            intended_s=9.0,
            sent_s=9.0,
            e2e_ms=3000.0,
            error="incomplete",
            error_detail=STREAM_ENDED_SILENTLY,
            client_request_id="cut-at-start",
        ),
        s(seq=3, intended_s=12.0, sent_s=12.0, x_served_by="fallback"),
        s(
            seq=4,
            intended_s=19.0,
            sent_s=19.0,
            e2e_ms=2000.0,
            error="stream_error",
            x_request_id="gw-4",
        ),
        s(seq=5, intended_s=21.0, sent_s=21.0, status=429, error="http", retry_after="2"),
        s(seq=6, intended_s=22.0, sent_s=22.0, status=503, error="http"),
    ]
    table = fate_table(samples, 0.0, 10.0, 20.0)
    g = table.groups
    assert g["before"].counts["completed"] == 1 and g["before"].requests == 1
    # In flight when the fault began: counted in "during", as the phases count it.
    assert g["during"].requests == 3
    assert g["during"].counts["cut_silently"] == 1
    assert g["during"].counts["failed_over"] == 1
    assert g["during"].counts["error_in_stream"] == 1
    assert g["after"].counts["refused"] == 2 and g["after"].refused_with_retry_after == 1
    assert g["in_flight_at_start"].requests == 1
    assert g["in_flight_at_start"].ids == {"cut_silently": ["cut-at-start"]}
    assert g["in_flight_at_end"].requests == 1
    assert g["in_flight_at_end"].ids == {"error_in_stream": ["gw-4"]}
    assert g["all"].requests == 6 and sum(g["all"].counts.values()) == 6
    assert set(g["all"].counts) == set(FATES)


def test_samples_written_before_retry_after_was_recorded_still_read() -> None:
    old = s().to_json().replace(',"retry_after":null', "")
    assert "retry_after" not in old
    assert Sample.from_dict(json.loads(old)).retry_after is None
