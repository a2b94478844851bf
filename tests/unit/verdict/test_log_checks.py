"""The log hygiene judges, each seen failing on the defect it is for (rows as the store returns
them), and the evidence picked from load samples."""

from __future__ import annotations

from harness.data.samples import Sample
from harness.gate.logs_step import what_went_wrong
from harness.observe.logs import LogLine, ids_filter, to_line
from harness.verdict.logs import ErrorAnswer, judge_error_lines, judge_exceptions, judge_secrets

ANSWERS = [ErrorAnswer("r-401", 401, "probe"), ErrorAnswer("r-503", 503, "load")]


def _gw(status: int, error: str | None) -> LogLine:
    fields = {"status": str(status), "request_id": "x"}
    if error:
        fields["error"] = error
    return LogLine(time="t", layer="gateway", fields=fields)


def test_error_answers_with_their_gateway_lines_pass() -> None:
    lines = {"r-401": [_gw(401, "missing_api_key")], "r-503": [_gw(503, "breaker_open")]}
    assert judge_error_lines(ANSWERS, lines).outcome == "pass"


def test_an_error_answer_without_a_gateway_line_fails() -> None:
    nginx_only = LogLine(time="t", layer="nginx", fields={"status": "401"})
    lines = {"r-401": [nginx_only], "r-503": [_gw(503, "breaker_open")]}
    check = judge_error_lines(ANSWERS, lines)
    assert check.outcome == "fail"
    assert check.reasons == [
        "probe request r-401 answered 401: no gateway log line with its request id"
    ]


def test_an_error_line_without_a_reason_or_with_another_status_fails() -> None:
    lines = {"r-401": [_gw(401, None)], "r-503": [_gw(200, "x")]}
    reasons = judge_error_lines(ANSWERS, lines).reasons
    assert "its gateway line gives no reason" in reasons[0]
    assert "its gateway line says status 200" in reasons[1]


def test_a_traceback_in_the_load_window_fails() -> None:
    rows = [
        {"layer": "gateway", "level": "error", "status": "503", "error": "breaker_open"},
        {
            "layer": "gateway",
            "level": "error",
            "_msg": "Exception in ASGI application",
            "exception_type": "KeyError",
            "exception": "Traceback ...",
            "replica": "gateway-1",
        },
    ]
    assert judge_exceptions(rows[:1], "w").outcome == "pass"
    check = judge_exceptions(rows, "w")
    assert check.outcome == "fail" and "KeyError" in check.reasons[0]
    assert check.measured["unhandled"] == 1


def test_an_api_key_or_planted_pii_in_any_line_fails_without_printing_the_key() -> None:
    secrets = {"API key sk-har...": "sk-harness-local", "planted email": "jane.doe@example.com"}
    clean = [{"layer": "gateway", "request_id": "a", "status": "200"}]
    assert judge_secrets(clean, secrets).outcome == "pass"
    leaky = [
        *clean,
        {
            "layer": "gateway",
            "request_id": "b",
            "request_headers": "{'authorization': 'Bearer sk-harness-local'}",
        },
        {"layer": "gateway", "request_id": "c", "request_body": "mail jane.doe@example.com"},
    ]
    check = judge_secrets(leaky, secrets)
    assert check.outcome == "fail" and check.measured["lines_with_secrets"] == 2
    assert not any("sk-harness-local" in r for r in check.reasons)


def test_evidence_picks_failed_degraded_and_fallback_requests() -> None:
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
            e2e_ms=1.0,
            status=200,
        )
        return Sample(**{**base, **kw})  # type: ignore[arg-type]

    assert what_went_wrong(s()) is None
    assert what_went_wrong(s(x_served_by="primary")) is None
    assert what_went_wrong(s(x_served_by="fallback")) == "served by the fallback pool"
    assert what_went_wrong(s(status=503, x_served_by="degraded")) == "status 503"
    assert what_went_wrong(s(status=0, error="timeout")) == "error: timeout"


def test_store_rows_become_lines_and_ids_are_quoted() -> None:
    row = {
        "_time": "2026-11-30T15:00:00Z",
        "layer": "nginx",
        "_stream": "{}",
        "status": "502",
        "_msg": "missing _msg field; see the docs",
        "upstream": "",
    }
    line = to_line(row)
    assert line.layer == "nginx" and line.fields == {"status": "502"}
    assert ids_filter(['a"b']) == '(request_id:in("a\\"b") or client_request_id:in("a\\"b"))'


def test_evidence_goes_under_the_first_check_that_did_not_pass_else_the_first() -> None:
    from harness.gate.logs_step import attach
    from harness.observe.logs import RequestEvidence
    from harness.verdict.checks import CheckResult

    ev = [RequestEvidence(request_id="r", status=503, outcome="status 503")]
    checks = [
        CheckResult(name=n, category="load", outcome=o)
        for n, o in (("a", "pass"), ("b", "warn"), ("c", "fail"))
    ]
    attach(ev, checks)
    assert [len(c.evidence) for c in checks] == [0, 1, 0]
    passing = [CheckResult(name=n, category="load", outcome="pass") for n in "xy"]
    attach(ev, passing)
    assert [len(c.evidence) for c in passing] == [1, 0]


def test_evidence_lines_order_by_time_whatever_the_fraction_digits() -> None:
    from harness.gate.logs_step import _when

    times = ["2026-11-30T15:29:50.71Z", "2026-11-30T15:29:50.7Z", "2026-11-30T15:29:43.297931Z"]
    lines = [LogLine(time=t, layer="model") for t in times]
    assert [x.time for x in sorted(lines, key=_when)] == [times[2], times[1], times[0]]


def test_an_experiments_evidence_goes_under_a_check_of_its_own_phase() -> None:
    """A fallback answer of the fault goes under a check that read the fault's requests, not
    under the experiment's first check; it names its phase and every check that read it."""
    from harness.gate.logs_step import attach
    from harness.observe.logs import RequestEvidence
    from harness.verdict.checks import CheckResult

    names = (
        "x: before the fault, primary_share>=0.8",
        "x: during the fault, fallback_share>=0.9",
        "x: during the fault, error_rate<=0.01",
        "x: load kept its schedule",
    )
    outcomes = ("pass", "pass", "fail", "pass")
    checks = [
        CheckResult(name=n, category="chaos", outcome=o)
        for n, o in zip(names, outcomes, strict=True)
    ]
    during = RequestEvidence(
        request_id="r-1",
        status=200,
        outcome="served by the fallback pool",
        phase="during",
        checks=[names[1], names[2], names[3]],
    )
    before = RequestEvidence(
        request_id="r-0",
        status=200,
        outcome="served by the fallback pool",
        phase="before",
        checks=[names[0], names[3]],
    )
    attach([before, during], checks)
    assert [[e.request_id for e in c.evidence] for c in checks] == [["r-0"], [], ["r-1"], []]
