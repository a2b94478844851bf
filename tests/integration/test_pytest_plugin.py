"""The pytest plugin as a user meets it: markers, `harness_stack` and `toxiproxy` fixtures."""

from __future__ import annotations

import pytest

from harness.paths import PROJECT_ROOT

pytestmark = [pytest.mark.integration, pytest.mark.slow]
pytest_plugins = ["pytester"]

USER_TEST = """
import httpx
import pytest


@pytest.mark.chaos
def test_primary_down_is_served_by_fallback(harness_stack, toxiproxy):
    ep = harness_stack.endpoints
    for proxy in ("primary-0", "primary-1"):
        toxiproxy.set_enabled(proxy, False)
    r = httpx.post(
        f"{ep.nginx}/v1/chat/completions",
        json={"messages": [{"role": "user", "content": "hi"}], "max_tokens": 4},
        headers={"Authorization": f"Bearer {ep.api_key}"},
        timeout=60,
    )
    assert r.status_code == 200
    assert r.headers["x-served-by"] == "fallback"


def test_toxiproxy_fixture_reset_the_proxies(harness_stack, toxiproxy):
    assert all(p["enabled"] for p in toxiproxy.proxies().values())
"""


def test_user_tests_get_a_running_stack_and_a_toxiproxy_client(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_user=USER_TEST)
    result = pytester.runpytest_subprocess(
        "--harness-stack",
        str(PROJECT_ROOT / "tests" / "fixtures" / "sim-stack.yaml"),
        "-p",
        "no:cacheprovider",
        "--strict-markers",
        "-v",
        timeout=300,
    )
    result.assert_outcomes(passed=2)
