"""The docker provider's launcher: each ServiceDef runs as a container (testcontainers-python).

Containers use host networking, so the plan's 127.0.0.1 ports and rendered configs work
unchanged and no bridge address is ever involved. The service's argv runs with argv[0] replaced
by the image's program (ImageRef.executable, else argv[0]'s basename on the image's PATH); the
image's own entrypoint is overridden. `definition.mounts` are bind-mounted at the same paths.

Ryuk (testcontainers' reaper) is off, since its image cannot be pulled on machines with no
registry: the launcher records every container it creates and removes them all in `close()`,
including one whose start failed. Readiness stays with the orchestrator (same probes as local).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, BinaryIO

from harness.errors import ServiceStartError, StackError
from harness.images.catalog import TAG_PREFIX
from harness.spec.images import ImageMap, ImageRef, resolve_image_map
from harness.stack import watchdog

if TYPE_CHECKING:
    from docker.models.containers import Container
    from testcontainers.core.container import DockerContainer

    from harness.stack.plan import ServiceDef

RUN_LABEL = "io.llm-deploy-gate.run"
SERVICE_LABEL = "io.llm-deploy-gate.service"
OWNER_LABEL = "io.llm-deploy-gate.owner"  # "host:pid" of the harness that made it
# Host variables that only make sense on the host: the image's own PATH and paths must win.
_HOST_ONLY_ENV = frozenset({"PATH", "VIRTUAL_ENV", "PYTHONHOME", "LD_LIBRARY_PATH", "HOME"})


@dataclass(frozen=True)
class ContainerSettings:
    """How one service runs as a container; pure data, so it is testable with no engine."""

    image: str
    name: str
    entrypoint: list[str]
    command: list[str]
    env: dict[str, str]
    volumes: list[tuple[str, str, str]]  # (host path, container path, mode)
    kwargs: dict[str, Any]  # docker-py create() arguments testcontainers passes through


def container_settings(definition: ServiceDef, image: ImageRef, run_id: str) -> ContainerSettings:
    argv = list(definition.argv)
    if not argv:
        raise StackError(f"service {definition.name!r} has an empty command line")
    env = {k: v for k, v in definition.env.items() if k not in _HOST_ONLY_ENV}
    env.update({k: os.environ[k] for k in image.pass_env if k in os.environ})
    volumes = []
    for path in definition.mounts:
        if not path.exists():
            # Docker would create a root-owned empty directory in its place: fail clearly instead.
            raise StackError(f"service {definition.name!r}: mount {path} does not exist")
        volumes.append((str(path), str(path), "rw"))
    kwargs: dict[str, Any] = {
        "network_mode": "host",  # same 127.0.0.1 ports as the local provider; no bridge at all
        # Present (and empty) so testcontainers does not pick a network itself: with no
        # DOCKER_HOST and a /.dockerenv file it joins "its own" container's network, and
        # docker-py then replaces network_mode with it.
        "network": None,
        "init": True,  # tini as PID 1: Go binaries as PID 1 would ignore SIGTERM
        "labels": {
            RUN_LABEL: run_id,
            SERVICE_LABEL: definition.name,
            OWNER_LABEL: f"{socket.gethostname()}:{os.getpid()}",
        },
    }
    if image.as_host_user:
        kwargs["user"] = f"{os.getuid()}:{os.getgid()}"
    if image.gpu:
        from docker.types import DeviceRequest

        kwargs["device_requests"] = [DeviceRequest(count=-1, capabilities=[["gpu"]])]
        kwargs["ipc_mode"] = "host"  # vLLM's workers share tensors through /dev/shm
    return ContainerSettings(
        image=image.ref,
        name=f"gate-{run_id}-{definition.name}",
        entrypoint=[image.executable or PurePosixPath(argv[0]).name],
        command=argv[1:],
        env=env,
        volumes=volumes,
        kwargs=kwargs,
    )


def container_for(settings: ContainerSettings) -> DockerContainer:
    """The (not yet started) testcontainers container; creating it connects to the engine."""
    from testcontainers.core.container import DockerContainer

    c = DockerContainer(settings.image)
    c.with_name(settings.name)
    c.with_command(settings.command)
    for key, value in settings.env.items():
        c.with_env(key, value)
    for host, inside, mode in settings.volumes:
        c.with_volume_mapping(host, inside, mode)
    c.with_kwargs(entrypoint=settings.entrypoint, **settings.kwargs)
    return c


class ContainerHandle:
    """One running container; what faults act on (docker pause/unpause/kill/restart)."""

    def __init__(self, definition: ServiceDef, container: DockerContainer, log_path: Path) -> None:
        self.name = definition.name
        self.definition = definition
        self._tc = container
        self._c: Container = container.get_wrapped_container()
        self.container_id: str = str(self._c.id)
        mode = self._c.attrs.get("HostConfig", {}).get("NetworkMode")
        if mode != "host":
            # Never let a service sit on a bridge: all traffic must stay on 127.0.0.1.
            raise StackError(f"container for {self.name!r} got network mode {mode!r}, not host")
        self._log_path = log_path
        self._pump = _LogPump(self._c, log_path)
        self._pump.start()

    def _state(self) -> dict[str, Any]:
        import docker.errors

        try:
            self._c.reload()
        except docker.errors.NotFound:
            return {}
        state: dict[str, Any] = self._c.attrs.get("State", {})
        return state

    @property
    def pid(self) -> int | None:
        pid = int(self._state().get("Pid") or 0)
        return pid or None

    def alive(self) -> bool:
        # A paused container is alive, as a SIGSTOPped process is for the local provider.
        return bool(self._state().get("Running"))

    def exit_code(self) -> int | None:
        state = self._state()
        if not state:
            return None
        return None if state.get("Running") else int(state.get("ExitCode", 0))

    def paused(self) -> bool:
        return bool(self._state().get("Paused"))

    def pause(self) -> None:
        self._c.pause()

    def resume(self) -> None:
        self._c.unpause()

    def reload(self) -> None:
        # Through the engine's API, not a host PID: the daemon may not share this PID space.
        if not self.alive():
            raise StackError(f"{self.name} is not running: no container to reload")
        self._c.kill(signal="SIGHUP")

    def kill(self) -> None:
        self._c.kill()
        if self.paused():
            self._c.unpause()  # so the pending SIGKILL lands and the container exits

    def stop(self, timeout_s: float = 5.0) -> None:
        if self.paused():
            self._c.unpause()  # a frozen process cannot act on SIGTERM
        self._c.stop(timeout=max(1, round(timeout_s)))

    def restart(self) -> None:
        if self.paused():
            self._c.unpause()
        self._c.restart(timeout=5)

    def log_tail(self, lines: int = 30) -> str:
        import docker.errors

        try:
            return bytes(self._c.logs(tail=lines)).decode(errors="replace")
        except docker.errors.NotFound:
            return _file_tail(self._log_path, lines)

    def remove(self) -> None:
        import docker.errors

        with contextlib.suppress(docker.errors.NotFound):
            self._c.remove(force=True, v=True)
        self._pump.finish()
        self._tc.get_docker_client().client.close()


class _LogPump(threading.Thread):
    """Copies the container's output into log_path as it comes, across restarts.

    A followed log stream ends when the container stops; after a restart (a new StartedAt) it
    reattaches. Lines are asked for with the engine's timestamps and a line is written only if
    it is newer than the last one written, so each line is written once. (Not `since` the new
    StartedAt: the engine records it after the process started, and on a busy machine a
    restarted Redis had logged "Ready to accept connections" before it.)
    """

    def __init__(self, container: Container, log_path: Path) -> None:
        super().__init__(name=f"logs-{container.name}", daemon=True)
        self._c = container
        self._path = log_path
        self._done = threading.Event()
        self._last_ns = -1  # the engine's stamp of the last line written
        # The log exists from the launch, as a process's does: not only once this thread runs.
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_path.touch()

    def finish(self, timeout_s: float = 2.0) -> None:
        self._done.set()
        if self.is_alive() and threading.current_thread() is not self:
            self.join(timeout_s)

    def run(self) -> None:
        import docker.errors

        # Its own model object (same client): reload() here must not race the handle's.
        client = self._c.client
        watched: Container = client.containers.get(str(self._c.id)) if client else self._c
        attached_start: str | None = None
        with self._path.open("ab") as out:
            # Until finish() or the container is gone: an engine slow to answer on a busy machine
            # (a restart, a stream that fails) is tried again, never given up on for good.
            while not self._done.is_set():
                try:
                    watched.reload()
                    started = str(watched.attrs["State"].get("StartedAt", ""))
                    if started != attached_start and not started.startswith("0001"):
                        attached_start = None  # until the stream ends: a broken one is retried
                        self._copy(watched, out)
                        attached_start = started
                except docker.errors.NotFound:
                    return
                except Exception:  # engine hiccup, or the stream broke: attach again
                    pass
                self._done.wait(0.25)

    def _copy(self, watched: Container, out: BinaryIO) -> None:
        """Follow the container's log until its stream ends, writing the lines not yet written."""
        # Whole seconds: the lines of the last one written's second come again and are skipped.
        since = self._last_ns // 1_000_000_000 if self._last_ns >= 0 else None
        for chunk in watched.logs(stream=True, follow=True, since=since, timestamps=True):
            # One log message a chunk, after its stamp ("2026-12-07T13:34:07.882569952Z ").
            stamp, _, line = bytes(chunk).partition(b" ")
            try:
                ns = _stamp_ns(stamp.decode())
            except ValueError:  # no stamp to go by: written as it came
                ns, line = self._last_ns + 1, bytes(chunk)
            if ns <= self._last_ns:
                continue
            out.write(line)
            out.flush()
            self._last_ns = ns


def _stamp_ns(stamp: str) -> int:
    """Nanoseconds since the epoch of the engine's RFC 3339 stamp (to the nanosecond, which
    Python's datetime does not keep)."""
    head, _, frac = stamp.rstrip("Z").partition(".")
    seconds = datetime.fromisoformat(f"{head}+00:00").timestamp()
    return int(seconds) * 1_000_000_000 + int((frac or "0")[:9].ljust(9, "0"))


def _file_tail(path: Path, lines: int) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


class ContainerLauncher:
    """Starts ServiceDefs as containers and removes every one of them on close()."""

    kind = "docker"

    def __init__(
        self,
        images: ImageMap | None = None,
        run_id: str | None = None,
        docker_host: str | None = None,
    ) -> None:
        from testcontainers.core.config import testcontainers_config

        from harness.images.dockerd import resolve_docker_host

        # Ryuk's image cannot be pulled without a registry; close() does its job instead.
        testcontainers_config.ryuk_disabled = True
        # Default: the built image-map file if present (`harness images build`), else upstream.
        self.images = images if images is not None else resolve_image_map()
        self.run_id = run_id or secrets.token_hex(4)
        self.docker_host = docker_host or resolve_docker_host()
        if self.docker_host and os.environ.get("DOCKER_HOST") != self.docker_host:
            # testcontainers finds the engine only through DOCKER_HOST or this property.
            testcontainers_config.tc_properties["tc.host"] = self.docker_host
        # A harness killed outright (SIGKILL, power loss) could not remove its containers.
        remove_orphans(self.docker_host)
        self._lock = threading.Lock()
        self._created: dict[str, DockerContainer] = {}  # by container name
        self._handles: list[ContainerHandle] = []

    def launch(self, definition: ServiceDef, log_path: Path) -> ContainerHandle:
        import docker.errors

        try:
            image = self.images.get(definition.image)
        except KeyError as exc:
            raise ServiceStartError(
                definition.name, str(exc.args[0]), hint=definition.hint
            ) from None
        settings = container_settings(definition, image, self.run_id)
        container = container_for(settings)
        # By name, before it exists: a harness killed while it starts leaves no container either.
        watchdog.current().add_container(settings.name, self.docker_host)
        with self._lock:
            self._created[settings.name] = container
        try:
            _ensure_image(container, image.ref, definition)
            container.start()
            handle = ContainerHandle(definition, container, log_path)
        except ServiceStartError:
            self._discard(settings.name, container)
            raise
        except docker.errors.APIError as exc:
            tail = _container_logs(container)
            self._discard(settings.name, container)
            raise ServiceStartError(
                definition.name,
                f"docker could not start {image.ref}: {exc.explanation or exc}",
                log_tail=tail,
                hint=_start_hint(definition, image, str(exc.explanation or exc)),
            ) from None
        except BaseException:
            self._discard(settings.name, container)
            raise
        with self._lock:
            self._handles.append(handle)
        return handle

    def _discard(self, name: str, container: DockerContainer) -> None:
        import docker.errors

        with contextlib.suppress(docker.errors.DockerException):
            container.stop(force=True, delete_volume=True)  # testcontainers' stop removes
            watchdog.current().remove_container(name)  # once gone; else the watchdog tries too
        with self._lock:
            self._created.pop(name, None)

    def close(self) -> None:
        """Remove every container this launcher created (running, paused or exited)."""
        import docker.errors

        with self._lock:
            handles, self._handles = self._handles, []
            created, self._created = self._created, {}
        by_container = {id(h._tc): h for h in handles}
        for name, container in created.items():
            handle = by_container.get(id(container))
            with contextlib.suppress(docker.errors.DockerException):
                if handle is not None:
                    handle.remove()
                else:
                    container.stop(force=True, delete_volume=True)
                watchdog.current().remove_container(name)


def _start_hint(definition: ServiceDef, image: ImageRef, why: str) -> str:
    if image.gpu and ("device driver" in why or "gpu" in why.lower()):
        return (
            "the engine cannot hand out GPUs: install the NVIDIA Container Toolkit and "
            "configure it as a docker runtime (nvidia-ctk runtime configure --runtime=docker)"
        )
    return (
        f"check images.{definition.image}: the image must provide "
        f"{image.executable or PurePosixPath(definition.argv[0]).name!r} (set `executable` to "
        "its path in the image when the name differs)"
    )


def _ensure_image(container: DockerContainer, ref: str, definition: ServiceDef) -> None:
    """Pull `ref` if the engine lacks it, failing with a remedy rather than a registry error."""
    import docker.errors

    client = container.get_docker_client().client
    try:
        client.images.get(ref)
        return
    except docker.errors.ImageNotFound:
        pass
    if ref.startswith(f"{TAG_PREFIX}/"):
        # Built here, never published: asking a registry would only fail slowly.
        raise ServiceStartError(
            definition.name,
            f"local image {ref} is not in the engine",
            hint="run `harness images build` (it builds every local image)",
        )
    try:
        client.images.pull(ref)
    except docker.errors.APIError as exc:
        raise ServiceStartError(
            definition.name,
            f"image {ref} is not in the engine and could not be pulled: {exc.explanation or exc}",
            hint="on a machine with no registry run `harness images build`; otherwise point "
            f"images.{definition.image} at an image you can pull",
        ) from None


def remove_orphans(docker_host: str | None = None) -> int:
    """Remove containers whose owning harness process (on this host) no longer runs."""
    import docker
    import docker.errors

    from harness.stack.process import pid_alive

    host = docker_host
    try:
        client = docker.DockerClient(base_url=host) if host else docker.from_env()
    except docker.errors.DockerException:
        return 0  # no engine reachable: launch() reports that with its own words
    removed = 0
    me = socket.gethostname()
    try:
        for c in client.containers.list(all=True, filters={"label": OWNER_LABEL}):
            owner_host, _, pid = c.labels.get(OWNER_LABEL, "").rpartition(":")
            if owner_host == me and pid.isdigit() and not pid_alive(int(pid)):
                with contextlib.suppress(docker.errors.NotFound):
                    c.remove(force=True, v=True)
                    removed += 1
    except docker.errors.DockerException:
        pass
    finally:
        client.close()
    return removed


def _container_logs(container: DockerContainer) -> str:
    import docker.errors

    wrapped = container.get_wrapped_container()  # set once created, even if start() failed
    if wrapped is None:
        return ""
    with contextlib.suppress(docker.errors.DockerException):
        return bytes(wrapped.logs(tail=30)).decode(errors="replace")
    return ""
