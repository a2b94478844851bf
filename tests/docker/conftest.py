"""Fixtures for the docker provider: a private dockerd and the local images, once per session.

The session fixture starts `.tools/docker`'s dockerd unless it already runs (and then stops it
at the end: set HARNESS_KEEP_DOCKERD=1 to keep it for the next run), builds the local images
(a second or two when nothing changed) and removes every container the harness labelled, so a
failed test leaves nothing running. All traffic stays on 127.0.0.1: the engine has no bridge.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator

import docker
import docker.errors
import pytest
from docker_support import Engine

from harness.images import dockerd
from harness.images.build import (
    BuildOptions,
    build_all,
    present_local_images,
    write_image_map,
)
from harness.images.catalog import CATALOG
from harness.spec.images import default_image_map_file, resolve_image_map
from harness.stack.docker import RUN_LABEL


@pytest.fixture(scope="session")
def docker_engine() -> Iterator[Engine]:
    if os.geteuid() != 0:
        pytest.skip("the private dockerd and debootstrap need root")
    t0 = time.monotonic()
    paths, started = dockerd.start()
    print(
        f"\ndockerd {'started' if started else 'already running'} in {time.monotonic() - t0:.1f} s"
    )
    patch = pytest.MonkeyPatch()
    for key, value in dockerd.test_environment(paths).items():
        patch.setenv(key, value)
    client = docker.DockerClient(base_url=paths.host)
    try:
        builds = build_all(client, list(CATALOG), BuildOptions(), strict=False)
        for r in builds:
            print(f"image {r.name:<15} {r.outcome:<11} {r.seconds:6.1f} s {r.detail[:200]}")
        write_image_map(default_image_map_file(), present_local_images(client))
        yield Engine(paths, client, builds, resolve_image_map())
    finally:
        # Whatever a test left of the harness's containers (a crash's leftovers).
        for c in client.containers.list(all=True, filters={"label": RUN_LABEL}):
            with contextlib.suppress(docker.errors.NotFound):
                c.remove(force=True, v=True)
        client.close()
        patch.undo()
        if started and not os.environ.get("HARNESS_KEEP_DOCKERD"):
            dockerd.stop(paths)
