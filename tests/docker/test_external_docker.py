"""An external stack spec pointing at a container stack that `harness up --provider docker`
brought up in another process: gated with and without its Toxiproxy, as the local provider's
stack is in tests/integration/test_external_stack.py. The containers use host networking, so
every address in the spec is on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from docker_support import DOCKER_SUITE, SIM_IMAGES, Engine
from external_support import (
    KEYS,
    assert_breaker_gated_through_its_toxiproxy,
    assert_gated_without_toxiproxy,
    harness_up,
)

pytestmark = [pytest.mark.docker, pytest.mark.slow, *DOCKER_SUITE]


@pytest.fixture(scope="module")
def container_endpoints(
    docker_engine: Engine, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    docker_engine.require(*SIM_IMAGES)
    with harness_up(tmp_path_factory.mktemp("docker-up"), "--provider", "docker") as endpoints:
        assert endpoints["provider"] == "docker"
        assert len(docker_engine.client.containers.list()) >= 10  # every service a container
        yield endpoints
    assert docker_engine.client.containers.list(all=True) == [], "harness up left containers"


def test_gate_a_container_stack_as_external_without_its_toxiproxy(
    tmp_path: Path, container_endpoints: dict[str, Any]
) -> None:
    assert_gated_without_toxiproxy(tmp_path, container_endpoints, KEYS["gated"])


def test_gate_a_container_stack_as_external_through_its_toxiproxy(
    tmp_path: Path, container_endpoints: dict[str, Any]
) -> None:
    assert_breaker_gated_through_its_toxiproxy(tmp_path, container_endpoints, KEYS["breaker"])
