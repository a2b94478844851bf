"""The traffic_burst fault: its spec, where it goes and with which key and budget, its bounded
loop against a limiter that answers as told, and the checks that judge its answers, each seen
failing on a planted defect."""

from __future__ import annotations

import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
from pydantic import TypeAdapter, ValidationError

from harness.errors import ConfigError
from harness.faults.burst import (
    Burst,
    BurstAnswer,
    BurstPlan,
    MinuteAdmissions,
    burst_figures,
    plan_burst,
)
from harness.measure.summary import LoadSummary
from harness.spec.experiment import ExperimentSpec, Fault, TrafficBurst, unknown_targets
from harness.spec.loader import load_yaml_model
from harness.spec.stack import StackSpec
from harness.stack import RunningStack
from harness.verdict.burst import burst_checks, fits_budget

FAULT = TypeAdapter(Fault)
LOAD_KEY = "sk-load"
# 12:00:00 UTC on 30 November 2026: minute boundaries fall on whole multiples of 60.
T0 = 1_796_040_000.0


def _stack(
    keys: list[str],
    *,
    nginx: str = "http://127.0.0.1:8080",
    rate_limit: Any = None,
    external: bool = False,
) -> RunningStack:
    settings: dict[str, Any] = {"auth": {"api_keys": keys}}
    if rate_limit is not None:
        settings["rate_limit"] = rate_limit
    spec = StackSpec.model_validate({"gateway": {"settings": settings}})
    if external:
        spec = cast(
            StackSpec,
            SimpleNamespace(external=object(), gateway=spec.gateway, model_fields_set=set()),
        )
    return cast(
        RunningStack,
        SimpleNamespace(spec=spec, endpoints=SimpleNamespace(api_key=LOAD_KEY, nginx=nginx)),
    )


def test_defaults_and_the_only_target() -> None:
    burst = FAULT.validate_python({"kind": "traffic_burst"})
    assert isinstance(burst, TrafficBurst)
    assert (burst.targets, burst.key, burst.rate_rps, burst.max_requests, burst.per_minute) == (
        ("entry",),
        None,
        25.0,
        200,
        None,
    )
    assert unknown_targets(burst, {"primary-0"}, {"nginx"})[0] == []
    # Bounded by its rate over the window and by its count.
    assert burst.planned(4) == 100 and burst.planned(60) == 200


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"rate_rps": 0}, "rate_rps"),
        ({"rate_rps": 500}, "rate_rps"),
        ({"max_requests": 0}, "max_requests"),
        ({"max_requests": 5000}, "max_requests"),
        ({"per_minute": 0}, "per_minute"),
        ({"key": ""}, "key"),
        ({"targets": ["nginx"]}, "targets"),
        ({"targets": ["entry", "entry"]}, "targets"),
        ({"rate": 5}, "rate"),
    ],
)
def test_bad_burst_fields_are_refused_with_the_field(bad: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        FAULT.validate_python({"kind": "traffic_burst", **bad})
    assert field in str(info.value)


def test_a_burst_that_cannot_exceed_its_budget_is_a_bad_file(tmp_path: Path) -> None:
    p = tmp_path / "small.yaml"
    p.write_text(
        "kind: experiment\ntitle: small\nfault: {kind: traffic_burst, rate_rps: 5, "
        "per_minute: 100}\nfault_for_s: 10s\n"
    )
    with pytest.raises(ConfigError, match="fault: the burst sends at most 50 requests"):
        load_yaml_model(ExperimentSpec, p)
    r = subprocess.run(
        [sys.executable, "-m", "harness", "validate", str(p)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert str(p) in r.stderr and "no request would be refused" in r.stderr


def test_plan_takes_another_key_and_the_declared_budget() -> None:
    burst = TrafficBurst()
    plan = plan_burst(burst, _stack([LOAD_KEY, "sk-a", "sk-b"]), "e.yaml")
    assert plan == BurstPlan(url="http://127.0.0.1:8080", key="sk-a", per_minute=100)
    named = TrafficBurst(key="sk-b", per_minute=40)
    assert plan_burst(named, _stack([LOAD_KEY, "sk-a"]), "e.yaml").per_minute == 40


@pytest.mark.parametrize(
    ("burst", "stack", "message"),
    [
        (TrafficBurst(), _stack([LOAD_KEY]), "no API key besides the load's"),
        (TrafficBurst(key=LOAD_KEY), _stack([LOAD_KEY, "sk-a"]), "the load's own key"),
        (
            TrafficBurst(),
            _stack([LOAD_KEY, "sk-a"], rate_limit={"enabled": False}),
            "fault.per_minute: the stack declares no rate limit",
        ),
        (
            TrafficBurst(),
            _stack([LOAD_KEY, "sk-a"], nginx="http://192.0.2.7:80"),
            "not on loopback",
        ),
        (TrafficBurst(), _stack([LOAD_KEY, "sk-a"], external=True), "fault.key: an external"),
    ],
)
def test_plan_refuses_what_cannot_be_judged(
    burst: TrafficBurst, stack: RunningStack, message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        plan_burst(burst, stack, "e.yaml")
    assert info.value.source == "e.yaml"


class FakeLimiterHandler(BaseHTTPRequestHandler):
    """A limiter that admits the first `budget` requests and refuses the rest with 429, with or
    without Retry-After as the test says; it counts what it got."""

    budget = 5
    retry_after: str | None = "3"
    seen: list[str] = []
    lock = threading.Lock()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        with self.lock:
            self.seen.append(self.headers.get("Authorization", ""))
            admitted = len(self.seen) <= self.budget
        self.send_response(200 if admitted else 429)
        if not admitted and self.retry_after is not None:
            self.send_header("Retry-After", self.retry_after)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def fake_limiter() -> Any:
    FakeLimiterHandler.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeLimiterHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_the_burst_sends_its_count_on_its_key_and_stops(fake_limiter: str) -> None:
    burst = Burst(BurstPlan(fake_limiter, "sk-burst", 5), rate_rps=200, max_requests=12)
    burst.start()
    while len(FakeLimiterHandler.seen) < 12 and burst.is_alive():
        threading.Event().wait(0.05)
    answers = burst.stop()
    assert len(answers) == 12 == len(FakeLimiterHandler.seen)
    assert set(FakeLimiterHandler.seen) == {"Bearer sk-burst"}
    fig = burst_figures(answers)
    assert (fig.admitted, fig.refused, fig.retry_after_share, fig.retry_after_s) == (
        5,
        7,
        1.0,
        (3, 3),
    )


def test_the_burst_ends_with_its_window_before_its_count(fake_limiter: str) -> None:
    burst = Burst(BurstPlan(fake_limiter, "sk-burst", 5), rate_rps=2, max_requests=1000)
    burst.start()
    threading.Event().wait(1.2)
    answers = burst.stop()
    assert not burst.is_alive()
    assert 1 <= len(answers) <= 4  # 2 a second for about a second, not a thousand


def _answers(
    admitted: list[float], refused: list[float], retry: str | None = "2", other: int = 0
) -> list[BurstAnswer]:
    return (
        [BurstAnswer(T0 + t, T0 + t + 0.01, 200) for t in admitted]
        + [BurstAnswer(T0 + t, T0 + t + 0.01, 429, retry) for t in refused]
        + [BurstAnswer(T0, T0 + 30, 0)] * other
    )


def _phases(refused: int = 0) -> dict[str, LoadSummary]:
    def summary(n429: int) -> LoadSummary:
        counts = SimpleNamespace(total=10, by_status={"200": 10 - n429, "429": n429})
        return cast(LoadSummary, SimpleNamespace(counts=counts))

    return {"before": summary(0), "during": summary(refused), "after": summary(0)}


def _outcomes(answers: list[BurstAnswer], budget: int = 100, refused: int = 0) -> dict[str, Any]:
    checks = burst_checks("t", burst_figures(answers), budget, _phases(refused))
    return {c.name.removeprefix("t: "): c for c in checks}


def test_figures_count_admissions_per_clock_minute_and_over_any_60s() -> None:
    # 100 admitted in the 5 s before 12:01, 8 in the 5 s after: a sliding-window limiter's turn.
    admitted = [55 + i * 0.05 for i in range(100)] + [60.5 + i * 0.5 for i in range(8)]
    fig = burst_figures(_answers(admitted, [59.9, 61.0]))
    assert fig.admitted_per_minute == {
        "12:00": MinuteAdmissions(100, 100),
        "12:01": MinuteAdmissions(8, 8),
    }
    assert fig.most_admitted_in_60s == 108
    checks = _outcomes(_answers(admitted, [59.9, 61.0]))
    assert all(c.outcome == "pass" for c in checks.values()), checks
    budget = checks["admitted within the budget per minute"].measured
    assert budget["most_admitted_per_minute"] == 100 and budget["most_admitted_in_60s"] == 108


def test_an_admission_answered_across_the_minutes_turn_may_belong_to_either_minute() -> None:
    # As seen once on a busy runner (106 admitted, 101 of them in one minute by their round
    # trips' midpoints): one sent 10 ms before the turn and answered 4 ms after it may have been
    # decided on either side. Either minute can hold it within the budget: a pass.
    admitted = [5 + i * 0.05 for i in range(100)] + [61.0 + i * 0.6 for i in range(5)]
    answers = [*_answers(admitted, [30.0]), BurstAnswer(T0 + 59.99, T0 + 60.004, 200)]
    fig = burst_figures(answers)
    assert fig.admitted_per_minute == {
        "12:00": MinuteAdmissions(100, 101),
        "12:01": MinuteAdmissions(5, 6),
    }
    assert str(fig.admitted_per_minute["12:00"]) == "100 (+1 across its turn)"
    c = _outcomes(answers)["admitted within the budget per minute"]
    assert c.outcome == "pass", c
    assert c.measured["most_admitted_per_minute"] == 100
    assert "12:00 UTC: 100 (+1 across its turn), 12:01 UTC: 5 (+1 across its turn)" in c.reasons[0]


def test_admissions_across_the_turn_that_fit_in_no_minute_leave_the_check_undecided() -> None:
    # A full minute each side: the two across the turn are over the budget in one of them, but
    # the client cannot tell which, so it cannot show either minute over.
    admitted = [1 + i * 0.5 for i in range(100)] + [61 + i * 0.5 for i in range(100)]
    answers = _answers(admitted, []) + [BurstAnswer(T0 + 59.99, T0 + 60.01, 200)] * 2
    c = _outcomes(answers)["admitted within the budget per minute"]
    assert c.outcome == "warn" and c.measured["decision"] == "inconclusive", c
    assert "cannot all be placed within it, nor shown over it" in c.reasons[0]


@pytest.mark.parametrize(
    ("spans", "budget", "fits"),
    [
        ([], 100, True),
        ([(0, 0)] * 3, 3, True),
        ([(0, 0)] * 4, 3, False),
        ([(0, 0)] * 3 + [(0, 1)], 3, True),  # the one across the turn goes to the next minute
        ([(0, 0)] * 3 + [(0, 1)] + [(1, 1)] * 3, 3, False),
        ([(0, 1)] * 6, 3, True),
        ([(0, 1)] * 6 + [(5, 5)] * 3, 3, True),  # a gap of empty minutes
        ([(0, 2), (1, 1), (1, 1), (2, 2), (2, 2)], 2, True),  # the long one goes first
        ([(0, 0)], 0, False),
    ],
)
def test_the_admissions_fit_the_budget_when_each_can_be_given_a_minute(
    spans: list[tuple[int, int]], budget: int, fits: bool
) -> None:
    assert fits_budget(spans, budget) is fits


def test_a_limiter_admitting_over_the_budget_fails() -> None:
    checks = _outcomes(_answers([i * 0.05 for i in range(120)], [7.0]))
    c = checks["admitted within the budget per minute"]
    assert c.outcome == "fail"
    assert c.reasons == ["120 admitted in the minute from 12:00 UTC, budget 100"]


def test_a_limiter_that_never_refuses_fails_twice() -> None:
    checks = _outcomes(_answers([i * 0.05 for i in range(150)], []))
    assert checks["burst refused over its budget"].outcome == "fail"
    assert "no 429 among 150 burst requests" in checks["burst refused over its budget"].reasons[0]
    assert checks["every 429 carried Retry-After"].reasons == ["no 429 to judge"]


def test_a_429_without_retry_after_fails() -> None:
    answers = _answers([1.0] * 100, [2.0] * 50) + _answers([], [3.0] * 2, retry=None)
    c = _outcomes(answers)["every 429 carried Retry-After"]
    assert c.outcome == "fail" and c.reasons == [
        "2 of 52 429s without a Retry-After of whole seconds"
    ]
    assert c.measured["retry_after_share"] == pytest.approx(50 / 52)
    bad_value = _outcomes(_answers([1.0] * 100, [2.0] * 5, retry="soon"))
    assert bad_value["every 429 carried Retry-After"].outcome == "fail"


def test_unanswered_burst_requests_and_a_refused_load_fail() -> None:
    checks = _outcomes(_answers([1.0] * 100, [2.0] * 50, other=3), refused=2)
    assert checks["burst refused over its budget"].reasons == ["unexpected statuses no answer x3"]
    load = checks["the load's own key not refused"]
    assert load.outcome == "fail"
    assert load.reasons == ["2 of the load's requests meant for during were refused (429)"]
    too_few = _outcomes(_answers([1.0] * 50, [2.0] * 10))["burst refused over its budget"]
    assert too_few.reasons == ["only 60 sent, not more than the budget 100/minute"]


def test_a_burst_needs_the_gateways_error_answers_not_fault_parts() -> None:
    """On an external stack the burst runs wherever the gateway answers errors (429s), with no
    fault part of the harness's own."""
    from harness.gate.steps import experiment_needs

    exp = ExperimentSpec.model_validate({"title": "b", "fault": {"kind": "traffic_burst"}})
    assert experiment_needs(exp) == ("error:rate_limited",)
