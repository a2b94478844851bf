"""Schemathesis against the gateway's OpenAPI schema, on a gateway of the simulated stack.

The schema is built from the gateway's own routes (those of the app the stack runs), with the
request bodies of its validation models and its two ways of sending a key added, since its
handlers read the raw request. Every operation gets generated cases, half of them carrying the
stack's valid key: no 5xx but the designed degraded 503, and no 2xx for an API operation without
the valid key. The number of cases tried is printed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fuzz_stack import fuzz_stack
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.spec.gateway import GatewayRuntimeConfig
from harness.stack import RunningStack

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PUBLIC = {"/healthz", "/metrics"}
TRIED: Counter[str] = Counter()
FUZZED: set[str] = set()  # the operations fuzzed in this process


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    with fuzz_stack(tmp_path_factory.mktemp("schema-stack")) as running:
        yield running


def _body(model: Any) -> dict[str, Any]:
    return {
        "required": True,
        "content": {
            "application/json": {
                "schema": model.model_json_schema(ref_template="#/components/schemas/{model}")
            }
        },
    }


def gateway_schema() -> dict[str, Any]:
    """The gateway app's OpenAPI document (routes do not depend on the addresses given)."""
    from gateway.app import create_app
    from gateway.validation import ChatParams, CompletionParams

    config = GatewayRuntimeConfig(replica="schema", primary_urls=("http://127.0.0.1:9",))
    paths: dict[str, Any] = {}
    for route in create_app(config).routes:
        for method in sorted(getattr(route, "methods", None) or ()):
            if method != "HEAD":  # Starlette adds it to every GET
                ok = {"200": {"description": "the route's answer"}}
                paths.setdefault(route.path, {})[method.lower()] = {"responses": ok}
    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": "LLM gateway", "version": "0"},
        "paths": paths,
    }
    components = doc.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for path, model in (
        ("/v1/chat/completions", ChatParams),
        ("/v1/completions", CompletionParams),
    ):
        body = _body(model)
        schemas.update(body["content"]["application/json"]["schema"].pop("$defs", {}))
        doc["paths"][path]["post"]["requestBody"] = body
    components["securitySchemes"] = {
        "bearer": {"type": "http", "scheme": "bearer"},
        "header": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
    }
    for path in ("/v1/chat/completions", "/v1/completions", "/v1/models"):
        for op in doc["paths"][path].values():
            op["security"] = [{"bearer": []}, {"header": []}]
    return doc


schema = schemathesis.openapi.from_dict(gateway_schema())


FUZZ_SETTINGS = settings(
    max_examples=60, deadline=None, database=None, suppress_health_check=list(HealthCheck)
)


def check_case(case: Any, with_key: bool, stack: RunningStack) -> None:
    valid = stack.endpoints.api_key
    headers = dict(case.headers or {})
    if with_key:
        headers["Authorization"] = f"Bearer {valid}"
    case.headers = headers
    r = case.call(base_url=stack.endpoints.gateways[0], timeout=30)
    TRIED[f"{r.status_code // 100}xx"] += 1
    keyed = headers.get("Authorization") == f"Bearer {valid}" or headers.get("X-API-Key") == valid
    degraded = r.status_code == 503 and r.headers.get("x-served-by") == "degraded"
    assert r.status_code < 500 or degraded, f"{case.method} {case.path}: {r.status_code} {r.text}"
    if 200 <= r.status_code < 300 and case.path not in PUBLIC:
        assert keyed, f"{case.method} {case.path}: {r.status_code} without a valid key"


# One test per operation, named for it (schemathesis' own parametrization gives every operation
# the same node id under pytest 9.2, and the suite's report then counts them as one).
OPERATIONS = [result.ok() for result in schema.get_all_operations()]


def fuzz(operation: Any, stack: RunningStack) -> None:
    @given(case=operation.as_strategy(), with_key=st.booleans())
    @FUZZ_SETTINGS
    def one_operation(case: Any, with_key: bool) -> None:
        check_case(case, with_key, stack)

    one_operation()
    FUZZED.add(operation.label)


@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda op: op.label)
def test_gateway_schema(operation: Any, stack: RunningStack) -> None:
    fuzz(operation, stack)


def test_cases_were_tried(stack: RunningStack) -> None:
    """The cases above were generated and sent. Run alone, in another order or on another
    worker than some of those tests, it fuzzes the operations this process has not, so it never
    depends on them."""
    for operation in OPERATIONS:
        if operation.label not in FUZZED:
            fuzz(operation, stack)
    total = sum(TRIED.values())
    print(f"{total} schemathesis cases against the gateway: {dict(sorted(TRIED.items()))}")
    assert total >= 50, "run it with the test above"
