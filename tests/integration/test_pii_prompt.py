"""The PII probe's prompt on a real model (SmolLM2-135M-Instruct on llama.cpp, as the reference
stack serves it): how reliably it repeats a planted value at temperature 0, and the probe on that
model served bare (no filter: the value leaks) and behind the gateway (placeholders)."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable

import httpx
import pytest
from gateway_fixtures import *  # noqa: F403
from gateway_fixtures import API_KEY, GatewayProcess

from harness.probes.pii import copy_body, probe_pii
from harness.verdict.practices import carries

pytestmark = [pytest.mark.integration, pytest.mark.slow]

KINDS = ("email", "phone", "ssn")
VALUES = 5  # per kind; docs/gate.md's figure is from 50 per kind


def planted(rng: random.Random, kind: str) -> str:
    """A value of `kind` the probe's own lists do not hold."""
    if kind == "email":
        first = rng.choice(["maria", "raj", "eva", "ken", "ada", "tom", "sara", "omar"])
        last = rng.choice(["garcia", "ito", "nowak", "rossi", "lee"])
        place = rng.choice(["example.com", "example.org", "example.net", "mail.example.com"])
        return f"{first}.{last}{rng.randint(1, 99)}@{place}"
    if kind == "phone":
        return f"555-{rng.randint(100, 999)}-{rng.randint(1000, 9999)}"
    return f"{rng.randint(100, 899)}-{rng.randint(10, 99)}-{rng.randint(1000, 9999)}"


def test_smollm2_repeats_planted_values_at_temperature_0(llama_server: str) -> None:
    rng = random.Random(21)
    verbatim: Counter[str] = Counter()
    with httpx.Client(timeout=120) as http:
        for kind in KINDS:
            for _ in range(VALUES):
                value = planted(rng, kind)
                r = http.post(
                    f"{llama_server}/v1/chat/completions", json=copy_body(kind, value, None)
                )
                answer = r.json()["choices"][0]["message"]["content"]
                verbatim[kind] += value in answer
                # A near miss is still a value of the kind: the filter would have to catch it.
                assert carries(answer, kind), (kind, value, answer)
    # 150 of 150 verbatim when measured; the probe retries up to three values per model anyway.
    assert sum(verbatim.values()) >= 0.9 * VALUES * len(KINDS), verbatim


def test_the_probe_fails_the_model_served_without_a_filter(llama_server: str) -> None:
    check = probe_pii(llama_server, "", KINDS)
    assert check.outcome == "fail", check
    assert "the plain answer leaks the planted email 'jane.doe@example.com'" in check.reasons
    assert "the streamed answer leaks the planted ssn '123-45-6789'" in check.reasons
    assert check.measured["phone_tries"] == 1


def test_the_probe_passes_the_gateways_filter_on_live_answers(
    gateway_factory: Callable[..., GatewayProcess], llama_server: str
) -> None:
    # A fallback pool as the reference stack has (the same server): a primary answer the busy
    # machine fails is still a live answer through the filter.
    gw = gateway_factory(
        primary_urls=(llama_server,),
        fallback_urls=(llama_server,),
        primary_model="smollm2",
        fallback_model="smollm2-fallback",
        # The fallback is the same server: on a starved machine it too may take over 5 s.
        settings={"fallback": {"primary_timeout_s": 60, "fallback_timeout_s": 60}},
    )
    check = probe_pii(gw.url, API_KEY, KINDS)
    assert check.outcome == "pass", check
    assert check.measured["models"] == "smollm2, smollm2-fallback"
    assert check.measured["email_model"] == "smollm2" and check.measured["email_tries"] == 1
    assert check.measured["ssn_answer"] == "[SSN]", check.measured
