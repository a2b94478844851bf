"""The Server-Timing header as the load client reads it: each metric's duration in ms."""

from __future__ import annotations

from harness.clients.server_timing import durations


def test_durations_of_the_gateways_header() -> None:
    assert durations("gw;dur=0.812, upstream;dur=31.204") == {"gw": 0.812, "upstream": 31.204}


def test_other_params_metrics_without_dur_and_bad_values_are_skipped() -> None:
    header = 'cache;desc="hit", db;desc="x";dur=53, gw;dur=abc, total;dur="12.5"'
    assert durations(header) == {"db": 53.0, "total": 12.5}
    assert durations("") == {}
