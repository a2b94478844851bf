"""ContainerLauncher against the private dockerd: single services, faults, logs, cleanup."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from docker_support import DOCKER_SUITE, Engine, wait_ready, wait_until

from harness.errors import ServiceStartError, StackError
from harness.spec.images import ImageRef
from harness.stack.docker import ContainerLauncher
from harness.stack.plan import ServiceDef
from harness.stack.ports import free_ports, port_is_listening
from harness.stack.readiness import HttpReady, redis_ready

pytestmark = [pytest.mark.docker, *DOCKER_SUITE]


@pytest.fixture
def launcher(docker_engine: Engine) -> Iterator[ContainerLauncher]:
    docker_engine.require("redis", "nginx")
    launcher = ContainerLauncher(docker_engine.images, docker_host=docker_engine.paths.host)
    yield launcher
    launcher.close()
    assert docker_engine.labelled(launcher.run_id) == [], "close() left containers behind"


def redis_def(run_dir: Path) -> ServiceDef:
    (port,) = free_ports(1)
    # argv as the planner writes it for the local provider: the host path of the binary.
    argv = [
        "/usr/bin/redis-server",
        "--bind",
        "127.0.0.1",
        "--port",
        str(port),
        "--save",
        "",
        "--dir",
        str(run_dir),
    ]
    return ServiceDef(
        name="redis",
        role="redis",
        argv=argv,
        port=port,
        ready=redis_ready(port),
        image="redis",
        tier=0,
        mounts=[run_dir],
    )


def test_redis_container_answers_on_loopback_with_host_networking(
    launcher: ContainerLauncher, docker_engine: Engine, tmp_path: Path
) -> None:
    d = redis_def(tmp_path)
    handle = launcher.launch(d, tmp_path / "redis.log")
    wait_ready(d.ready)
    attrs = docker_engine.client.containers.get(handle.container_id).attrs
    assert attrs["HostConfig"]["NetworkMode"] == "host"
    # No bridge address exists to send anything to.
    assert not attrs["NetworkSettings"].get("IPAddress")
    assert handle.alive() and handle.exit_code() is None and handle.pid
    wait_until(lambda: "Ready to accept connections" in (tmp_path / "redis.log").read_text())


def test_pause_resume_kill_restart_act_on_the_container(
    launcher: ContainerLauncher, tmp_path: Path
) -> None:
    d = redis_def(tmp_path)
    log = tmp_path / "redis.log"
    handle = launcher.launch(d, log)
    wait_ready(d.ready)

    handle.pause()
    assert handle.alive(), "a paused container is still alive (as a SIGSTOPped process)"
    assert d.ready.probe() is not None, "a paused redis must not answer PING"
    handle.resume()
    wait_ready(d.ready, 5)

    handle.kill()
    wait_until(lambda: not handle.alive())
    assert handle.exit_code() == 137
    handle.restart()
    wait_ready(d.ready)
    assert handle.alive()

    # The log follows the container across restarts, each start's lines once. (Its follower
    # reads the engine's log stream: on a busy machine the second start's lines can take more
    # than a few seconds to come through.)
    wait_until(lambda: log.read_text().count("Ready to accept connections") >= 2, timeout_s=30)
    assert log.read_text().count("Ready to accept connections") == 2, log.read_text()

    handle.stop(timeout_s=5)
    assert handle.exit_code() == 0, "redis-server exits 0 on SIGTERM (forwarded by tini)"
    assert not port_is_listening(d.port)


def test_kill_while_paused_ends_the_container(launcher: ContainerLauncher, tmp_path: Path) -> None:
    d = redis_def(tmp_path)
    handle = launcher.launch(d, tmp_path / "redis.log")
    wait_ready(d.ready)
    handle.pause()
    handle.kill()
    wait_until(lambda: not handle.alive())
    assert handle.exit_code() == 137


NGINX_CONF = """daemon off;
pid {run}/nginx.pid;
events {{ worker_connections 64; }}
http {{
  access_log off;
  client_body_temp_path {run}/tmp; proxy_temp_path {run}/tmp;
  fastcgi_temp_path {run}/tmp; uwsgi_temp_path {run}/tmp; scgi_temp_path {run}/tmp;
  server {{ listen 127.0.0.1:{port}; location / {{ return 200 "hello from nginx\\n"; }} }}
}}
"""


def test_nginx_serves_a_config_rendered_on_the_host(
    launcher: ContainerLauncher, tmp_path: Path
) -> None:
    (port,) = free_ports(1)
    (tmp_path / "tmp").mkdir()
    conf = tmp_path / "nginx.conf"
    conf.write_text(NGINX_CONF.format(run=tmp_path, port=port))
    d = ServiceDef(
        name="nginx",
        role="nginx",
        argv=[
            "/usr/sbin/nginx",
            "-p",
            str(tmp_path),
            "-c",
            str(conf),
            "-e",
            str(tmp_path / "error.log"),
        ],
        port=port,
        ready=HttpReady(f"http://127.0.0.1:{port}/"),
        image="nginx",
        tier=2,
        mounts=[tmp_path],
    )
    handle = launcher.launch(d, tmp_path / "nginx.log")
    wait_ready(d.ready)
    assert httpx.get(f"http://127.0.0.1:{port}/").text == "hello from nginx\n"
    assert (tmp_path / "nginx.pid").exists(), "nginx wrote into the bind-mounted run dir"
    handle.stop()
    assert handle.exit_code() == 0


def test_wrong_executable_exits_with_the_reason_in_the_log(
    docker_engine: Engine, tmp_path: Path
) -> None:
    docker_engine.require("redis")
    broken = docker_engine.images.model_copy(
        update={"redis": ImageRef(ref=docker_engine.images.redis.ref, executable="/no/such")}
    )
    launcher = ContainerLauncher(broken, docker_host=docker_engine.paths.host)
    try:
        # tini starts, so docker reports success; the exec fails at once, as a bad argv[0]
        # does for the local provider, and the orchestrator sees the exit and the log tail.
        handle = launcher.launch(redis_def(tmp_path), tmp_path / "redis.log")
        wait_until(lambda: handle.exit_code() is not None)
        assert handle.exit_code() != 0
        assert "/no/such" in handle.log_tail()
    finally:
        launcher.close()
    assert docker_engine.labelled(launcher.run_id) == []


def test_missing_local_image_points_at_images_build(docker_engine: Engine, tmp_path: Path) -> None:
    images = docker_engine.images.model_copy(
        update={"redis": ImageRef(ref="llm-deploy-gate/not-built:local")}
    )
    launcher = ContainerLauncher(images, docker_host=docker_engine.paths.host)
    try:
        d = redis_def(tmp_path)
        with pytest.raises(ServiceStartError, match="harness images build"):
            launcher.launch(d, tmp_path / "redis.log")
        assert docker_engine.labelled(launcher.run_id) == []
    finally:
        launcher.close()


def test_missing_mount_is_an_error_before_anything_starts(
    launcher: ContainerLauncher, tmp_path: Path
) -> None:
    d = redis_def(tmp_path)
    d.mounts.append(tmp_path / "absent")
    with pytest.raises(StackError, match="does not exist"):
        launcher.launch(d, tmp_path / "redis.log")


ORPHAN_MAKER = """
import json, os, signal, sys
from pathlib import Path
from harness.spec.images import ImageMap
from harness.stack import watchdog
from harness.stack.docker import ContainerLauncher
sys.path.insert(0, {tests!r})
from test_launcher import redis_def

images = ImageMap.model_validate_json(Path({images!r}).read_text())
launcher = ContainerLauncher(images, docker_host={host!r})
launcher.launch(redis_def(Path({run_dir!r})), Path({run_dir!r}) / "redis.log")
print(launcher.run_id, flush=True)
if {without_watchdog!r}:  # the watchdog is gone too: only the next harness can clean up
    watchdog.current()._proc.kill()
    watchdog.current()._proc.wait()
os.kill(os.getpid(), signal.SIGKILL)  # no close(): the containers are orphaned
"""


def _killed_harness(docker_engine: Engine, tmp_path: Path, without_watchdog: bool) -> str:
    """Run a harness that starts a redis container and SIGKILLs itself; return its run id
    once it is dead."""
    import subprocess
    import sys

    docker_engine.require("redis")
    images = tmp_path / "images.json"
    images.write_text(docker_engine.images.model_dump_json())
    script = ORPHAN_MAKER.format(
        tests=str(Path(__file__).parent),
        images=str(images),
        host=docker_engine.paths.host,
        run_dir=str(tmp_path),
        without_watchdog=without_watchdog,
    )
    # stderr (which the watchdog shares) is not waited for: the container is watched instead.
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == -9 and out.strip(), out
    return out.strip().splitlines()[-1]


def test_containers_of_a_killed_harness_are_removed_by_its_watchdog(
    docker_engine: Engine, tmp_path: Path
) -> None:
    import time

    run_id = _killed_harness(docker_engine, tmp_path, without_watchdog=False)
    t0 = time.monotonic()
    wait_until(lambda: docker_engine.labelled(run_id) == [], timeout_s=10)
    print(f"container removed {time.monotonic() - t0:.2f} s after the harness died")


def test_containers_of_a_killed_harness_are_removed_by_the_next_one(
    docker_engine: Engine, tmp_path: Path
) -> None:
    run_id = _killed_harness(docker_engine, tmp_path, without_watchdog=True)
    assert docker_engine.labelled(run_id), "the killed harness should have left its container"
    ContainerLauncher(docker_engine.images, docker_host=docker_engine.paths.host).close()
    assert docker_engine.labelled(run_id) == []
