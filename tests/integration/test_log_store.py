"""The log store in the real local stack (simulated model servers): VictoriaLogs ready and
scraped, every request's lines from nginx and the gateway found by its id with LogsQL, a stalled
store that slows no request, and a traceback shipped by the gateway's handler that the check
finds."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from gateway.log_shipping import LogStoreHandler
from harness.data.samples import Sample
from harness.gate.logs_step import log_checks
from harness.observe.logs import FAILED_QUERY, LogStore, request_query
from harness.spec.stack import ModelPool, SimulatorServer, StackSpec
from harness.stack.logs_service import SERVICE, jsonline_url
from harness.stack.orchestrator import start_stack
from harness.stack.provider import RunningStack
from harness.verdict.logs import ERRORS_LOGGED, NO_EXCEPTIONS, NO_SECRETS

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SPEC = StackSpec(
    primary=ModelPool(replicas=1, server=SimulatorServer(time_to_first_token_ms=5)),
    fallback=ModelPool(replicas=1, server=SimulatorServer(served_name="sim-fallback")),
)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    with start_stack(SPEC, run_dir=tmp_path_factory.mktemp("logs") / "run") as running:
        yield running


def _chat(stack: RunningStack, rid: str, key: str | None) -> httpx.Response:
    headers = {"X-Request-Id": rid, **({"Authorization": f"Bearer {key}"} if key else {})}
    body = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
    return httpx.post(
        f"{stack.endpoints.nginx}/v1/chat/completions", json=body, headers=headers, timeout=30
    )


def test_the_store_is_ready_scraped_and_holds_each_layers_lines(stack: RunningStack) -> None:
    ep = stack.endpoints
    assert ep.logs is not None and ep.logs.startswith("http://127.0.0.1:")
    targets = httpx.get(f"{ep.prometheus}/api/v1/targets", timeout=5).json()["data"]
    pools = {t["scrapePool"]: t["health"] for t in targets["activeTargets"]}
    assert pools.get("victoria-logs") == "up", pools

    tag = uuid.uuid4().hex[:8]
    ok, denied = f"ok-{tag}", f"denied-{tag}"
    assert _chat(stack, ok, ep.api_key).status_code == 200
    assert _chat(stack, denied, None).status_code == 401
    store = LogStore(ep.logs)
    store.settle()
    lines = store.lines_of([ok, denied])
    assert {x.layer for x in lines[ok]} == {"gateway", "nginx"}, lines[ok]
    gw = next(x for x in lines[denied] if x.layer == "gateway").fields
    assert gw["status"] == "401" and gw["error"] == "missing_api_key"
    nginx = next(x for x in lines[denied] if x.layer == "nginx").fields
    assert nginx["status"] == "401" and nginx["uri"] == "/v1/chat/completions"
    assert nginx["_msg"] == "access"
    # The queries `harness up` prints run as printed.
    failed = store.query(FAILED_QUERY)
    assert denied in {r.get("request_id") for r in failed}
    assert ok not in {r.get("request_id") for r in failed}
    assert {r["layer"] for r in store.query(request_query(ok))} == {"gateway", "nginx"}
    # The model servers' own log files, shipped by vlagent, tagged with the server's name.
    model = store.model_lines(time.time() - 600, time.time(), limit=1000)
    assert {x.fields.get("replica") for x in model} >= {"primary-0"}, model
    assert all(x.by_time and x.layer == "model" for x in model)


def test_a_stalled_store_slows_or_fails_no_request(stack: RunningStack) -> None:
    """The store is stopped (SIGSTOP): the shippers' posts hang, the answers do not."""
    ep = stack.endpoints
    store = stack.service(SERVICE)
    store.pause()
    try:
        statuses = [_chat(stack, f"stalled-{i}", ep.api_key).status_code for i in range(30)]
    finally:
        store.resume()
    assert statuses == [200] * 30


def _load_window(start_s: float, end_s: float) -> list[Sample]:
    """Two load samples spanning a window (the log checks read the load step's window off them)."""
    return [
        Sample(
            worker=0,
            seq=i,
            kind="chat",
            tenant="t",
            prompt_id="p",
            repeated=False,
            intended_s=None,
            sent_s=t,
            e2e_ms=1.0,
            status=200,
        )
        for i, t in enumerate((start_s, end_s))
    ]


def test_the_gates_log_checks_pass_then_a_shipped_traceback_fails_one(stack: RunningStack) -> None:
    """The gate's three log checks on the live store: clean, then with a traceback shipped by the
    gateway's own handler inside the load window (the planted bug)."""
    ep = stack.endpoints
    assert ep.logs is not None
    store = LogStore(ep.logs)
    keys = stack.spec.gateway.settings.auth.api_keys
    t0 = time.time()
    checks = log_checks(store, ep.nginx, ep.api_key, keys, _load_window(t0, t0 + 1))
    assert [c.outcome for c in checks] == ["pass", "pass", "pass"], checks

    handler = LogStoreHandler(jsonline_url(ep.logs), {"layer": "gateway", "replica": "planted"})
    log = logging.getLogger("test.planted.exception")
    log.addHandler(handler)
    try:
        {}["missing"]
    except KeyError:
        log.exception("unhandled", extra={"fields": {"request_id": "planted-1"}})
    handler.close()
    checks = log_checks(store, ep.nginx, ep.api_key, keys, _load_window(t0, time.time()))
    by_name = {c.name: c for c in checks}
    assert by_name[NO_EXCEPTIONS].outcome == "fail", by_name[NO_EXCEPTIONS]
    reason = by_name[NO_EXCEPTIONS].reasons[0]
    assert "KeyError" in reason and "planted-1" in reason
    assert by_name[ERRORS_LOGGED].outcome == "pass" and by_name[NO_SECRETS].outcome == "pass"
