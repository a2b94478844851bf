"""What a machine lacks to run a GPU stack spec, each missing part with a one-line fix.

Two things can run on a GPU machine, and each needs its own parts:
  NVML_CHECK  GPUMemoryHigh firing on real NVML figures (`harness gpu-check`): the driver, NVML,
              Python's NVML binding, something that can allocate GPU memory, Prometheus;
  VLLM_STACK  the spec itself on the docker provider: the driver, a docker engine that can hand
              a container the GPU, every image the spec runs, the vLLM model's weights.
The machine is asked through a `Host` (probes that run commands, load libraries and talk to the
docker engine); `preflight` turns what it saw into parts and fixes, so the logic is testable
with a host whose answers are made up.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from harness.errors import ToolMissingError
from harness.images.catalog import TAG_PREFIX
from harness.spec.images import ImageMap
from harness.spec.stack import StackSpec, VllmServer
from harness.tools import find_binary

NVML_CHECK = "GPUMemoryHigh on real NVML figures"
VLLM_STACK = "the vLLM stack"
# Images the docker provider runs for every stack besides its model servers' (the planner's
# services; tests/unit/test_gpu_host.py holds the two lists together).
STACK_IMAGES = (
    "toxiproxy",
    "redis",
    "victoria_logs",
    "vlagent",
    "prometheus",
    "alertmanager",
    "gateway",
    "redis_exporter",
    "nginx",
    "nginx_exporter",
)


@dataclass(frozen=True)
class Seen:
    """One probe's answer: ok True (present), False (missing) or None (not checked: what it
    depends on is missing), with what was seen."""

    ok: bool | None
    detail: str


class Host(Protocol):
    def gpus(self) -> Seen: ...
    def nvml_library(self) -> Seen: ...
    def nvml_binding(self) -> Seen: ...
    def gpu_filler(self) -> Seen: ...
    def prometheus(self) -> Seen: ...
    def docker_engine(self) -> Seen: ...
    def docker_gpu(self) -> Seen: ...
    def image(self, ref: str) -> Seen: ...
    def weights(self, model: str) -> Seen: ...


@dataclass(frozen=True)
class Part:
    name: str
    seen: Seen
    fix: str  # one line; what to do when it is missing
    needed_for: tuple[str, ...]

    @property
    def present(self) -> bool:
        return self.seen.ok is True


@dataclass(frozen=True)
class Preflight:
    parts: tuple[Part, ...]

    def missing(self) -> list[Part]:
        return [p for p in self.parts if not p.present]

    def can_run(self, what: str) -> bool:
        return all(p.present for p in self.parts if what in p.needed_for)

    def blocking(self, what: str) -> list[str]:
        return [p.name for p in self.parts if what in p.needed_for and not p.present]


def image_keys(spec: StackSpec) -> list[str]:
    """The image-map keys the docker provider runs for `spec`: its model servers' and the rest."""
    servers = dict.fromkeys(pool.server.kind for pool in spec.pools().values())
    return [*servers, *STACK_IMAGES]


_VLLM_IMAGE_FIX = (
    "docker pull {ref} (no registry here: `docker save` it where there is one and "
    "`docker load -i` the file here), or point images.vllm at your copy"
)


def _all_of(seen: dict[str, Seen]) -> Seen:
    """Several images as one part: present when all are, unchecked when any could not be."""
    unchecked = [key for key, s in seen.items() if s.ok is None]
    missing = [s.detail for s in seen.values() if s.ok is False]
    if unchecked:
        return Seen(None, f"not checked (no docker engine): {', '.join(unchecked)}")
    if missing:
        return Seen(False, f"{len(missing)} of {len(seen)} missing: " + "; ".join(missing))
    return Seen(True, f"all {len(seen)} present")


def _stack_images_fix(seen: dict[str, Seen], images: ImageMap) -> str:
    refs = [images.get(key).ref for key, s in seen.items() if s.ok is not True]
    pulled = [ref for ref in refs if not ref.startswith(f"{TAG_PREFIX}/")]
    fix = "`harness images build` (make images) builds every one of them and maps them"
    return fix + (f"; or docker pull {' '.join(pulled)}" if pulled else "")


def preflight(spec: StackSpec, host: Host, images: ImageMap) -> Preflight:
    """Every part `spec` needs on a GPU machine, probed through `host`."""
    both = (NVML_CHECK, VLLM_STACK)
    parts = [
        Part(
            "NVIDIA driver",
            host.gpus(),
            "install the NVIDIA driver for the card; `nvidia-smi` must then list it",
            both,
        ),
        Part(
            "NVML library",
            host.nvml_library(),
            "libnvidia-ml.so.1 comes with the driver: reinstall it, or add its folder to "
            "/etc/ld.so.conf.d and run ldconfig",
            both,
        ),
        Part(
            "Python NVML binding",
            host.nvml_binding(),
            "pip install nvidia-ml-py (`make install` puts it in .venv; the gateway image takes "
            "it from there: rebuild it with `harness images build --only gateway`)",
            both,
        ),
        Part(
            "GPU memory filler",
            host.gpu_filler(),
            "install PyTorch with CUDA, or make the driver's libcuda.so.1 loadable",
            (NVML_CHECK,),
        ),
        Part(
            "Prometheus",
            host.prometheus(),
            "`make install` (Debian's prometheus), or copy a prometheus binary into .tools/bin",
            (NVML_CHECK,),
        ),
        Part(
            "docker engine",
            host.docker_engine(),
            "install Docker Engine and start it, or point DOCKER_HOST at one",
            (VLLM_STACK,),
        ),
        Part(
            "GPUs in containers",
            host.docker_gpu(),
            "install the NVIDIA Container Toolkit, run `nvidia-ctk runtime configure "
            "--runtime=docker` and restart docker",
            (VLLM_STACK,),
        ),
    ]
    keys = image_keys(spec)
    if "vllm" in keys:
        ref = images.get("vllm").ref
        parts.append(
            Part("vLLM image", host.image(ref), _VLLM_IMAGE_FIX.format(ref=ref), (VLLM_STACK,))
        )
    rest = {key: host.image(images.get(key).ref) for key in keys if key != "vllm"}
    parts.append(
        Part("stack images", _all_of(rest), _stack_images_fix(rest, images), (VLLM_STACK,))
    )
    models = dict.fromkeys(
        p.server.model for p in spec.pools().values() if isinstance(p.server, VllmServer)
    )
    for model in models:
        parts.append(
            Part(
                f"weights of {model}",
                host.weights(model),
                f"where there is a network: `huggingface-cli download {model}`; copy the "
                "cache's hub/ folder to HF_HOME here and export HF_HUB_OFFLINE=1",
                (VLLM_STACK,),
            )
        )
    return Preflight(tuple(parts))


def find_weights(model: str, hub_home: Path) -> Seen:
    """A model's files, in a local folder (`model` a path) or the model hub's cache under
    `hub_home` (HF_HOME): config.json, a tokenizer and *.safetensors / *.bin weights, for the
    revision refs/main names (what vLLM loads offline)."""
    folder = Path(model)
    if not folder.is_dir():
        repo = hub_home / "hub" / ("models--" + model.replace("/", "--"))
        ref = repo / "refs" / "main"
        if not ref.is_file():
            return Seen(False, f"{ref} not found: the cache holds no copy of {model}")
        folder = repo / "snapshots" / ref.read_text(encoding="ascii").strip()
    files = {p.name: p for p in folder.iterdir()} if folder.is_dir() else {}
    weights = [p for p in files.values() if p.suffix in (".safetensors", ".bin")]
    lacking = [n for n in ("config.json",) if n not in files]
    if not {"tokenizer.json", "tokenizer_config.json"} & files.keys():
        lacking.append("tokenizer.json")
    if not weights:
        lacking.append("*.safetensors")
    if lacking:
        return Seen(False, f"{folder} lacks {', '.join(lacking)}")
    size = sum(p.stat().st_size for p in weights)
    return Seen(True, f"{folder} ({size / 2**30:.2f} GiB of weights)")


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


class MachineHost:
    """The probes, run on this machine. Each answers within seconds and never raises."""

    def __init__(self, hub_home: Path) -> None:
        self._hub_home = hub_home
        self._docker: Any = None
        self._docker_seen: Seen | None = None

    def gpus(self) -> Seen:
        smi = shutil.which("nvidia-smi")
        if smi is None:
            return Seen(False, "nvidia-smi not found on PATH")
        query = "--query-gpu=index,name,memory.total,driver_version"
        try:
            out = subprocess.run(
                [smi, query, "--format=csv,noheader"], capture_output=True, text=True, timeout=30
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return Seen(False, f"nvidia-smi did not answer: {exc}")
        lines = [line.strip() for line in out.stdout.splitlines() if line.strip()]
        if out.returncode != 0 or not lines:
            why = _first_line(out.stdout + out.stderr) or f"exit {out.returncode}"
            return Seen(False, f"nvidia-smi: {why}")
        return Seen(True, "; ".join(lines))

    def nvml_library(self) -> Seen:
        try:
            ctypes.CDLL("libnvidia-ml.so.1")
        except OSError as exc:
            return Seen(False, f"libnvidia-ml.so.1 not loadable: {exc}")
        return Seen(True, "libnvidia-ml.so.1 loads")

    def nvml_binding(self) -> Seen:
        try:
            import pynvml  # type: ignore[import-not-found,import-untyped,unused-ignore]
        except ImportError:
            return Seen(False, "no module pynvml (nvidia-ml-py) in this Python")
        try:
            pynvml.nvmlInit()
            count = int(pynvml.nvmlDeviceGetCount())
            pynvml.nvmlShutdown()
        except Exception as exc:  # NVMLError_LibraryNotFound, DriverNotLoaded, ...
            return Seen(False, f"pynvml is installed but NVML did not start: {exc}")
        if count < 1:
            return Seen(False, "NVML started and sees no GPU")
        return Seen(True, f"pynvml sees {count} GPU(s)")

    def gpu_filler(self) -> Seen:
        from harness.faults.gpu_fill import backend

        via = backend()
        if via is None:
            return Seen(False, "neither PyTorch nor libcuda.so.1 here")
        return Seen(True, "PyTorch" if via == "torch" else "the CUDA driver API (libcuda.so.1)")

    def prometheus(self) -> Seen:
        try:
            return Seen(True, str(find_binary("prometheus")))
        except ToolMissingError as exc:
            return Seen(False, str(exc))

    def docker_engine(self) -> Seen:
        if self._docker_seen is None:
            self._docker_seen = self._connect()
        return self._docker_seen

    def _connect(self) -> Seen:
        try:
            import docker
        except ImportError:
            return Seen(False, "no docker SDK in this Python (the docker provider needs it)")
        try:
            client = docker.from_env(timeout=10)
            version = client.version().get("Version", "?")
        except Exception as exc:  # DockerException, a refused socket, a timeout
            where = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
            return Seen(False, f"no engine answers at {where} ({type(exc).__name__})")
        self._docker = client
        return Seen(True, f"docker {version}")

    def docker_gpu(self) -> Seen:
        if not self.docker_engine().ok:
            return Seen(None, "not checked: no docker engine")
        try:
            runtimes = sorted(self._docker.info().get("Runtimes") or {})
        except Exception as exc:
            return Seen(False, f"docker info failed: {_first_line(str(exc))}")
        if "nvidia" in runtimes:
            return Seen(True, "the nvidia runtime is registered with the engine")
        hook = shutil.which("nvidia-container-runtime-hook")
        if hook is not None:
            return Seen(True, f"NVIDIA Container Toolkit hook at {hook}")
        return Seen(
            False, f"runtimes {', '.join(runtimes) or 'none'}; no nvidia-container-runtime-hook"
        )

    def image(self, ref: str) -> Seen:
        if not self.docker_engine().ok:
            return Seen(None, f"{ref}: not checked (no docker engine)")
        import docker.errors

        try:
            found = self._docker.images.get(ref)
        except docker.errors.ImageNotFound:
            return Seen(False, f"{ref}: not in the engine")
        except Exception as exc:  # the engine went away mid-check
            return Seen(False, f"{ref}: {type(exc).__name__}: {_first_line(str(exc))}")
        return Seen(True, f"{ref} ({str(found.short_id).removeprefix('sha256:')})")

    def weights(self, model: str) -> Seen:
        try:
            return find_weights(model, self._hub_home)
        except OSError as exc:
            return Seen(False, f"{model}: {exc}")

    def close(self) -> None:
        if self._docker is not None:
            with contextlib.suppress(Exception):
                self._docker.close()
