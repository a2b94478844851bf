"""The machine cache of built images: an engine that lacks an image (a fresh clone's private
dockerd) loads it from the layers saved when it was built, instead of building it again."""

from __future__ import annotations

import pytest
from docker_support import DOCKER_SUITE, Engine

from harness.images.build import FINGERPRINT_LABEL, BuildOptions, _saved, build_all
from harness.images.catalog import CATALOG

pytestmark = [pytest.mark.docker, *DOCKER_SUITE]


def test_an_image_the_engine_lacks_is_restored_from_the_machine_cache(
    docker_engine: Engine,
) -> None:
    client = docker_engine.client
    redis = next(i for i in CATALOG if i.key == "redis")
    fingerprint = client.images.get(redis.tag).labels[FINGERPRINT_LABEL]
    assert _saved(redis.tag, fingerprint).is_file(), "the session's build kept no copy"
    client.images.remove(redis.tag)
    results = {r.name: r for r in build_all(client, [redis], BuildOptions(), strict=True)}
    assert results["redis"].outcome == "restored", results["redis"]
    assert results["rootfs"].outcome == results["base"].outcome == "up to date"
    assert client.images.get(redis.tag).labels[FINGERPRINT_LABEL] == fingerprint
