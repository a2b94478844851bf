"""pytest plugin: markers and fixtures for testing an LLM serving stack with the harness.

Fixtures
- `harness_stack_spec`: the stack spec (`--harness-stack FILE`, else the reference stack).
- `harness_stack`: the stack brought up once per session (torn down at the end).
- `toxiproxy`: a bounded Toxiproxy client for `harness_stack`, reset after each test.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from harness.clients.toxiproxy import ToxiproxyClient
    from harness.spec.stack import StackSpec
    from harness.stack.provider import RunningStack

MARKERS = {
    "integration": "brings up real local services",
    "chaos": "fault-injection experiments against the real stack",
    "docker": "container provider (starts its own dockerd)",
    "load": "drives real load with Locust",
    "gate": "runs the deploy gate end to end",
    "slow": "takes more than a few seconds",
}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("harness", "LLM deploy gate")
    group.addoption(
        "--harness-stack", default=None, help="stack spec for the harness_stack fixture"
    )
    group.addoption(
        "--harness-provider", default=None, help="provider for harness_stack (local | docker)"
    )


def pytest_configure(config: pytest.Config) -> None:
    for name, doc in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {doc}")


@pytest.fixture(scope="session")
def harness_stack_spec(pytestconfig: pytest.Config) -> StackSpec:
    from harness.spec.files import load_stack_spec

    path = pytestconfig.getoption("--harness-stack")
    return load_stack_spec(Path(path) if path else None)


@pytest.fixture(scope="session")
def harness_stack(
    harness_stack_spec: StackSpec,
    tmp_path_factory: pytest.TempPathFactory,
    pytestconfig: pytest.Config,
) -> Iterator[RunningStack]:
    from harness.stack import start_stack
    from harness.stack.ownership import reap_dead_owners

    # As every `harness` command does: first remove what a killed harness left behind.
    reap_dead_owners(progress=print)
    provider = pytestconfig.getoption("--harness-provider")
    with start_stack(
        harness_stack_spec, run_dir=tmp_path_factory.mktemp("harness-stack"), provider=provider
    ) as stack:
        yield stack


@pytest.fixture
def toxiproxy(harness_stack: RunningStack) -> Iterator[ToxiproxyClient]:
    from harness.clients.toxiproxy import ToxiproxyClient

    with ToxiproxyClient(harness_stack.endpoints.toxiproxy) as client:
        client.reset()
        try:
            yield client
        finally:
            client.reset()
