"""The gateways' own /metrics pages, read and summed over replicas, for probes that compare
counters before and after one exact request."""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client.parser import text_string_to_metric_families

from harness.clients.http import new_client

# (sample name, sorted labels) -> value
Counters = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse_counters(texts: Sequence[str], names: Sequence[str]) -> Counters:
    """Sum of each (sample name, labels) over several /metrics pages, for the given names."""
    out: Counters = {}
    for text in texts:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name in names:
                    key = (sample.name, tuple(sorted(sample.labels.items())))
                    out[key] = out.get(key, 0.0) + float(sample.value)
    return out


def deltas(
    before: Counters, after: Counters, name: str, label: str | None = None
) -> dict[str, float]:
    """How much `name` grew between two readings, by the value of `label` ("" without one)."""
    out: dict[str, float] = {}
    for key, value in after.items():
        if key[0] != name:
            continue
        grew = value - before.get(key, 0.0)
        if grew:
            which = dict(key[1]).get(label, "") if label else ""
            out[which] = out.get(which, 0.0) + grew
    return out


def read_counters(gateways: Sequence[str], names: Sequence[str]) -> Counters:
    with new_client(timeout=10.0) as http:
        pages = []
        for url in gateways:
            r = http.get(f"{url}/metrics")
            r.raise_for_status()
            pages.append(r.text)
    return parse_counters(pages, names)
