"""Wheels for an image's Python, fetched on the host (where pip's index, proxy and CA work).

pip evaluates dependency markers for the interpreter it runs under, not for the target: the
venv's 3.11.7 skips `async-timeout; python_full_version < "3.11.3"`, which Debian's 3.11.2 needs.
So after `pip download` for the target tags, every downloaded wheel's requirements are checked
against the target's marker environment and whatever is missing is fetched too.
"""

from __future__ import annotations

import platform
import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename

from harness.errors import HarnessError

_MAX_ROUNDS = 8  # dependency depth is small; a loop that does not settle is a bug


def target_environment(python_full_version: str) -> dict[str, str]:
    """Marker environment of CPython `python_full_version` on this machine's architecture."""
    major_minor = ".".join(python_full_version.split(".")[:2])
    env: dict[str, str] = {k: str(v) for k, v in default_environment().items()}
    env.update(
        python_version=major_minor,
        python_full_version=python_full_version,
        implementation_name="cpython",
        implementation_version=python_full_version,
        platform_python_implementation="CPython",
        sys_platform="linux",
        os_name="posix",
        platform_system="Linux",
        platform_machine=platform.machine(),
    )
    return env


def _platform_args(glibc_minor: int = 36) -> list[str]:
    # Older pips do not widen one manylinux tag to the older ones it includes: list them all.
    arch = platform.machine()
    tags = [f"manylinux_2_{v}_{arch}" for v in range(glibc_minor, 4, -1)]
    tags += [f"manylinux2014_{arch}", f"manylinux2010_{arch}", f"manylinux1_{arch}"]
    return [arg for tag in tags for arg in ("--platform", tag)]


def _pip_download(requirements: list[str], dest: Path, python_full_version: str) -> None:
    major, minor = python_full_version.split(".")[:2]
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--only-binary=:all:",
        "--dest",
        str(dest),
        # Wheels for the image's interpreter and glibc (bookworm: 2.36), not the venv's.
        "--python-version",
        f"{major}.{minor}",
        "--implementation",
        "cp",
        "--abi",
        f"cp{major}{minor}",
        *_platform_args(),
        *requirements,
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise HarnessError(f"pip download failed:\n{done.stderr[-3000:]}")


def _wheel_requirements(wheel: Path) -> list[Requirement]:
    with zipfile.ZipFile(wheel) as z:
        meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        message = Parser().parsestr(z.read(meta).decode())
    return [Requirement(r) for r in message.get_all("Requires-Dist") or []]


def _missing(dest: Path, env: dict[str, str]) -> list[str]:
    have = {canonicalize_name(parse_wheel_filename(w.name)[0]) for w in dest.glob("*.whl")}
    wanted: dict[str, str] = {}
    for wheel in sorted(dest.glob("*.whl")):
        for req in _wheel_requirements(wheel):
            # Extras are not requested by anything here: a marker naming one does not apply.
            applies = req.marker is None or req.marker.evaluate({**env, "extra": ""})
            name = canonicalize_name(req.name)
            if applies and name not in have:
                wanted[name] = f"{req.name}{req.specifier}"
    return sorted(wanted.values())


def download_for_target(requirements_file: Path, dest: Path, python_full_version: str) -> None:
    """Download the pinned requirements and their target-side dependencies into `dest`."""
    lines = requirements_file.read_text().split()
    _pip_download(lines, dest, python_full_version)
    env = target_environment(python_full_version)
    for _ in range(_MAX_ROUNDS):
        extra = _missing(dest, env)
        if not extra:
            return
        _pip_download(extra, dest, python_full_version)
    raise HarnessError(f"wheel dependencies did not settle after {_MAX_ROUNDS} rounds: {extra}")
