"""`harness images build`: local images for machines with no registry, then an image-map file.

Steps: debootstrap a Debian minbase rootfs and `docker import` it; build `docker/base` FROM it;
build each catalog image FROM the base (host networking, so apt and pip reach their mirrors with
no bridge); write `.tools/images.yaml` naming every local image present. An image whose
fingerprint label matches its inputs is left alone, so a second run takes a second or two.

Each image built is also saved (`docker save`) in the machine cache under its fingerprint, and
an engine that lacks it (a fresh clone's private dockerd) loads it from there instead of building
it again: a fresh clone gets its images in seconds, not minutes. The rootfs keeps its image id
through save and load, so the fingerprints built on it match too.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import yaml

from harness.errors import HarnessError
from harness.images.catalog import (
    BASE_TAG,
    CATALOG,
    DOCKERFILES,
    ROOTFS_TAG,
    SUITE,
    Inputs,
    LocalImage,
)
from harness.paths import machine_cache_dir, tools_dir

if TYPE_CHECKING:
    import docker

FINGERPRINT_LABEL = "io.llm-deploy-gate.inputs"
DEFAULT_MIRROR = "http://deb.debian.org/debian"

Outcome = Literal["built", "restored", "up to date", "skipped", "failed"]


class ImageBuildError(HarnessError):
    """An image could not be built; the message ends with the build's last log lines."""


@dataclass(frozen=True)
class BuildResult:
    name: str
    tag: str
    outcome: Outcome
    seconds: float
    detail: str = ""


@dataclass(frozen=True)
class BuildOptions:
    mirror: str = DEFAULT_MIRROR
    force: bool = False
    workdir: Path | None = None  # scratch space; default .tools/docker/build

    def scratch(self) -> Path:
        return self.workdir or tools_dir() / "docker" / "build"


def _fingerprint(parts: Iterable[tuple[str, bytes]]) -> str:
    h = hashlib.sha256()
    for name, data in sorted(parts):
        h.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
    return h.hexdigest()[:32]


def _file_digest(path: Path) -> bytes:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.digest()


def _current(client: docker.DockerClient, tag: str, fingerprint: str) -> str | None:
    """Image id when `tag` exists with this fingerprint, else None."""
    import docker.errors

    try:
        image = client.images.get(tag)
    except docker.errors.ImageNotFound:
        return None
    labels = image.labels or {}
    return str(image.id) if labels.get(FINGERPRINT_LABEL) == fingerprint else None


def _saved(tag: str, fingerprint: str) -> Path:
    return (
        machine_cache_dir()
        / "images"
        / f"{tag.replace('/', '_').replace(':', '_')}-{fingerprint}.tar"
    )


def _restore(client: docker.DockerClient, tag: str, fingerprint: str) -> bool:
    """Load `tag` from the machine cache when it holds this fingerprint's image."""
    path = _saved(tag, fingerprint)
    if not path.is_file():
        return False
    with path.open("rb") as f:
        client.api.load_image(f)  # type: ignore[no-untyped-call]  # streamed, not read whole
    return _current(client, tag, fingerprint) is not None


def _keep(
    client: docker.DockerClient, tag: str, fingerprint: str, only_if_missing: bool = False
) -> None:
    """Save `tag` in the machine cache (replacing its older fingerprints); best effort."""
    path = _saved(tag, fingerprint)
    if only_if_missing and path.is_file():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    try:
        with tmp.open("wb") as f:
            for chunk in client.images.get(tag).save(named=True):
                f.write(chunk)
        tmp.replace(path)
    except OSError:
        tmp.unlink(missing_ok=True)
        return
    prefix = path.name[: -len(f"{fingerprint}.tar")]
    for old in path.parent.glob(f"{prefix}*.tar"):
        if old != path:
            old.unlink(missing_ok=True)


def _sources_list(mirror: str) -> str:
    lines = [f"deb {mirror} {SUITE} main", f"deb {mirror} {SUITE}-updates main"]
    if mirror.rstrip("/") == DEFAULT_MIRROR:
        lines.append(f"deb http://deb.debian.org/debian-security {SUITE}-security main")
    return "\n".join(lines) + "\n"


def _run_logged(cmd: list[str], log: Path, what: str) -> None:
    with log.open("wb") as out:
        done = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
        raise ImageBuildError(f"{what} failed (exit {done.returncode}); log {log}:\n{tail}")


def build_rootfs(client: docker.DockerClient, opts: BuildOptions) -> BuildResult:
    """debootstrap --variant=minbase, then `docker import` as ROOTFS_TAG."""
    start = time.monotonic()
    fingerprint = _fingerprint([("suite", SUITE.encode()), ("mirror", opts.mirror.encode())])
    if not opts.force and _current(client, ROOTFS_TAG, fingerprint):
        _keep(client, ROOTFS_TAG, fingerprint, only_if_missing=True)
        return BuildResult("rootfs", ROOTFS_TAG, "up to date", time.monotonic() - start)
    if not opts.force and _restore(client, ROOTFS_TAG, fingerprint):
        return BuildResult("rootfs", ROOTFS_TAG, "restored", time.monotonic() - start)
    if os.geteuid() != 0:
        raise ImageBuildError("debootstrap needs root: run `harness images build` as root")
    from harness.images.dockerd import _apt_install

    if shutil.which("debootstrap") is None:
        _apt_install(["debootstrap"])
    work = opts.scratch()
    work.mkdir(parents=True, exist_ok=True)
    rootfs, tarball = work / "rootfs", work / "rootfs.tar"
    shutil.rmtree(rootfs, ignore_errors=True)  # a half-made one from an interrupted run
    try:
        _run_logged(
            ["debootstrap", "--variant=minbase", SUITE, str(rootfs), opts.mirror],
            work / "debootstrap.log",
            "debootstrap",
        )
        _run_logged(["tar", "-C", str(rootfs), "-cf", str(tarball), "."], work / "tar.log", "tar")
        repo, tag = ROOTFS_TAG.rsplit(":", 1)
        client.api.import_image_from_file(
            str(tarball),
            repository=repo,
            tag=tag,
            changes=[f"LABEL {FINGERPRINT_LABEL}={fingerprint}"],
        )
    finally:
        shutil.rmtree(rootfs, ignore_errors=True)
        tarball.unlink(missing_ok=True)
    _keep(client, ROOTFS_TAG, fingerprint)
    return BuildResult("rootfs", ROOTFS_TAG, "built", time.monotonic() - start)


def _base_inputs(opts: BuildOptions) -> Inputs:
    return Inputs(texts={"sources.list": _sources_list(opts.mirror)})


def _fingerprint_of(directory: Path, inputs: Inputs, parent_id: str) -> str:
    parts = [("parent", parent_id.encode())]
    parts += [
        (f"dockerfile/{p.name}", p.read_bytes()) for p in sorted(directory.iterdir()) if p.is_file()
    ]
    parts += [(name, text.encode()) for name, text in inputs.texts.items()]
    parts += [(name, _file_digest(path)) for name, path in inputs.files.items()]
    return _fingerprint(parts)


def _prepare_context(
    directory: Path, inputs: Inputs, context: Path, run_in_base: Callable[[list[str]], str]
) -> None:
    shutil.rmtree(context, ignore_errors=True)
    shutil.copytree(directory, context)
    for name, text in inputs.texts.items():
        (context / name).parent.mkdir(parents=True, exist_ok=True)
        (context / name).write_text(text)
    for name, path in inputs.files.items():
        (context / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, context / name)
    if inputs.fetch is not None:
        inputs.fetch(context, run_in_base)


def _runner(client: docker.DockerClient, image: str) -> Callable[[list[str]], str]:
    def run(argv: list[str]) -> str:
        # No network needed; "none" works with the bridge disabled.
        out = client.containers.run(image, argv, remove=True, network_mode="none")
        return bytes(out).decode(errors="replace")

    return run


def build_one(
    client: docker.DockerClient,
    name: str,
    directory: Path,
    tag: str,
    parent: str,
    inputs: Inputs,
    opts: BuildOptions,
) -> BuildResult:
    """Build `directory`'s Dockerfile FROM `parent` as `tag`, unless already current."""
    import docker.errors

    start = time.monotonic()
    parent_id = str(client.images.get(parent).id)
    fingerprint = _fingerprint_of(directory, inputs, parent_id)
    if not opts.force and _current(client, tag, fingerprint):
        _keep(client, tag, fingerprint, only_if_missing=True)
        return BuildResult(name, tag, "up to date", time.monotonic() - start)
    if not opts.force and _restore(client, tag, fingerprint):
        return BuildResult(name, tag, "restored", time.monotonic() - start)
    context = opts.scratch() / f"context-{directory.name}"
    try:
        _prepare_context(directory, inputs, context, _runner(client, parent))
        client.images.build(
            path=str(context),
            tag=tag,
            buildargs={"BASE": parent},
            labels={FINGERPRINT_LABEL: fingerprint},
            network_mode="host",  # no bridge exists; apt and pip go out through the host
            rm=True,
            forcerm=True,
            pull=False,
        )
    except docker.errors.BuildError as exc:
        lines = [str(c.get("stream") or c.get("error") or "").rstrip() for c in exc.build_log]
        tail = "\n".join(line for line in lines if line)[-3000:]
        raise ImageBuildError(f"building {tag} failed: {exc.msg}\n{tail}") from None
    finally:
        shutil.rmtree(context, ignore_errors=True)
    _keep(client, tag, fingerprint)
    return BuildResult(name, tag, "built", time.monotonic() - start)


def build_all(
    client: docker.DockerClient,
    images: list[LocalImage],
    opts: BuildOptions,
    strict: bool,
    progress: Callable[[BuildResult], None] = lambda r: None,
) -> list[BuildResult]:
    """Rootfs, base, then `images`. With `strict`, a missing input is an error, not a skip."""
    results = [build_rootfs(client, opts)]
    progress(results[-1])
    base_dir = DOCKERFILES / "base"
    results.append(
        build_one(client, "base", base_dir, BASE_TAG, ROOTFS_TAG, _base_inputs(opts), opts)
    )
    progress(results[-1])
    for image in images:
        start = time.monotonic()
        try:
            inputs = image.collect()
        except HarnessError as exc:
            if strict:
                raise
            results.append(BuildResult(image.key, image.tag, "skipped", 0.0, str(exc)))
        else:
            try:
                results.append(
                    build_one(
                        client,
                        image.key,
                        DOCKERFILES / image.directory,
                        image.tag,
                        BASE_TAG,
                        inputs,
                        opts,
                    )
                )
            except HarnessError as exc:
                if strict:
                    raise
                results.append(
                    BuildResult(image.key, image.tag, "failed", time.monotonic() - start, str(exc))
                )
        progress(results[-1])
    if any(r.outcome == "built" for r in results):
        # A rebuilt image leaves its predecessor untagged; drop ours (labelled) only.
        client.images.prune(filters={"dangling": True, "label": FINGERPRINT_LABEL})
    return results


def present_local_images(client: docker.DockerClient) -> dict[str, str]:
    """ImageMap key -> tag for every catalog image present in the engine."""
    import docker.errors

    found: dict[str, str] = {}
    for image in CATALOG:
        try:
            client.images.get(image.tag)
        except docker.errors.ImageNotFound:
            continue
        found[image.key] = image.tag
    return found


def write_image_map(path: Path, entries: dict[str, str]) -> None:
    """An image-map file for the docker provider: local tags, binaries found on PATH."""
    # executable: null drops the upstream default (e.g. /bin/alertmanager): Debian names apply.
    data = {key: {"ref": tag, "executable": None} for key, tag in sorted(entries.items())}
    header = "# Written by `harness images build`: local images built from Debian packages.\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(header + yaml.safe_dump(data, sort_keys=True))
    tmp.replace(path)
