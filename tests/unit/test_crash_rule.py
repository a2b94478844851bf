"""A crash is never a verdict: the rule is by the exception's kind. Errors of talking to the
stack are evidence (an `error` check); any other exception is the harness's own defect and is
raised on, to end the run as "could not run" (the integration test sees exit 2 and the
traceback kept: tests/integration/test_gate_crash.py)."""

from __future__ import annotations

import json
import re

import httpx
import pytest

from harness.clients.http import json_object
from harness.clients.prometheus import PrometheusError
from harness.clients.toxiproxy import ToxiproxyError
from harness.errors import AnswerError, ConfigError, StackError, is_stack_side
from harness.gate.steps import guarded
from harness.load.runner import LoadRunError

REQUEST = httpx.Request("GET", "http://127.0.0.1:9/v1/models")

STACK_SIDE = [
    httpx.ConnectError("connection refused", request=REQUEST),
    httpx.ReadTimeout("timed out", request=REQUEST),
    httpx.RemoteProtocolError("peer closed", request=REQUEST),
    httpx.HTTPStatusError("500", request=REQUEST, response=httpx.Response(500, request=REQUEST)),
    json.JSONDecodeError("Expecting value", "<html>", 0),
    AnswerError("no data.result"),
    StackError("a service died"),
    PrometheusError("bad query"),
    ToxiproxyError("no such proxy"),
]
HARNESS_SIDE = [
    TypeError("'NoneType' object is not subscriptable"),
    KeyError("choices"),
    AttributeError("'list' object has no attribute 'get'"),
    ZeroDivisionError("division by zero"),
    AssertionError(),
]


@pytest.mark.parametrize("exc", STACK_SIDE, ids=lambda e: type(e).__name__)
def test_talking_to_the_stack_is_evidence(exc: BaseException) -> None:
    assert is_stack_side(exc)

    def probe() -> None:
        raise exc

    check = guarded("a probe", "stack", probe)  # type: ignore[arg-type]
    assert check.outcome == "error"
    assert check.reasons == [f"{type(exc).__name__}: {exc}"]


@pytest.mark.parametrize("exc", HARNESS_SIDE, ids=lambda e: type(e).__name__)
def test_any_other_exception_is_the_harness_s_defect(exc: BaseException) -> None:
    assert not is_stack_side(exc)

    def probe() -> None:
        raise exc

    with pytest.raises(type(exc)):
        guarded("a probe", "stack", probe)  # type: ignore[arg-type]


@pytest.mark.parametrize("exc", [ConfigError("profile.yaml", []), LoadRunError("no locust")])
def test_the_harness_s_own_named_errors_are_not_evidence(exc: BaseException) -> None:
    # They end the run as "could not run" (exit 2) through the pipeline, never as a check.
    assert not is_stack_side(exc)


def test_a_malformed_answer_is_an_answer_error() -> None:
    html = httpx.Response(200, text="<html>", request=REQUEST)
    asked = re.escape("GET http://127.0.0.1:9/v1/models: ")
    with pytest.raises(AnswerError, match=asked + "the answer is not JSON"):
        json_object(html)
    listed = httpx.Response(200, json=[1, 2], request=REQUEST)
    with pytest.raises(AnswerError, match="the answer is list, not a JSON object"):
        json_object(listed)
