"""Shared by the docker tests: the engine handle the session fixture yields, and waits."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import docker
import pytest

from harness.images import dockerd
from harness.images.build import BuildResult
from harness.spec.images import ImageMap
from harness.stack.docker import RUN_LABEL
from harness.stack.readiness import ReadyCheck

# Every docker test module's marks. One private dockerd serves them all, so they share one worker
# (tests/conftest.py groups tests/docker/), and the first of them builds the images in a fresh
# clone (a debootstrap: minutes on a busy machine), which counts against its timeout.
DOCKER_SUITE = (pytest.mark.timeout(900),)

# The images of tests/fixtures/sim-stack.yaml's services.
SIM_IMAGES = (
    "simulator",
    "gateway",
    "nginx",
    "redis",
    "toxiproxy",
    "prometheus",
    "alertmanager",
    "victoria_logs",
    "vlagent",
)


@dataclass
class Engine:
    paths: dockerd.DockerdPaths
    client: docker.DockerClient
    builds: list[BuildResult]
    images: ImageMap

    def require(self, *keys: str) -> None:
        """Skip the test when an image it needs could not be built here (with the reason)."""
        for r in self.builds:
            if r.name in keys and r.outcome in ("skipped", "failed"):
                pytest.skip(f"image {r.name} {r.outcome}: {r.detail.splitlines()[0]}")

    def labelled(self, run_id: str) -> list[str]:
        """Names of the containers one launcher run left in the engine."""
        # The engine's list alone (not one inspect per container, which races the removal this
        # is used to wait for: a container listed and gone before its inspect answered 404).
        found = self.client.api.containers(all=True, filters={"label": f"{RUN_LABEL}={run_id}"})
        return [str(c["Names"][0]).lstrip("/") for c in found]


def wait_ready(check: ReadyCheck, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    reason = check.probe()
    while reason is not None:
        assert time.monotonic() < deadline, f"not ready after {timeout_s}s: {reason}"
        time.sleep(0.1)
        reason = check.probe()


def wait_until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)
