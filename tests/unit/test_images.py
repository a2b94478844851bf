"""Image map, container settings and image-build helpers: pure logic, no Docker engine."""

from __future__ import annotations

import importlib.metadata
import os
import zipfile
from pathlib import Path

import pytest

from harness.errors import ConfigError, StackError
from harness.images import dockerd
from harness.images.build import write_image_map
from harness.images.catalog import gateway_requirements, select, shared_libraries
from harness.images.wheels import _missing, target_environment
from harness.spec.images import ImageMap, ImageRef, load_image_map, resolve_image_map
from harness.stack.docker import RUN_LABEL, container_settings
from harness.stack.plan import ServiceDef
from harness.stack.readiness import HttpReady


def service(tmp_path: Path, **kw: object) -> ServiceDef:
    base: dict[str, object] = dict(
        name="primary-0",
        role="model_server",
        port=9000,
        argv=["/work/main/.tools/bin/llama-server", "-m", "/m.gguf", "--port", "9000"],
        ready=HttpReady("http://127.0.0.1:9000/health"),
        image="llama_cpp",
        tier=0,
        env={"PATH": "/host/venv/bin", "GATEWAY_CONFIG": "/run/gw.json"},
        mounts=[tmp_path],
    )
    base.update(kw)
    return ServiceDef(**base)  # type: ignore[arg-type]


def test_defaults_are_upstream_images_and_vllm_asks_for_gpus() -> None:
    m = ImageMap()
    assert m.nginx.ref.startswith("nginx:") and m.vllm.ref.startswith("vllm/vllm-openai:")
    assert m.vllm.gpu and not m.vllm.as_host_user and "HF_TOKEN" in m.vllm.pass_env
    assert m.alertmanager.executable == "/bin/alertmanager"


def test_unknown_key_lists_the_valid_ones() -> None:
    with pytest.raises(KeyError, match="valid: alertmanager"):
        ImageMap().get("ngnix")


def test_a_string_is_a_ref_and_overlay_keeps_unset_fields() -> None:
    mine = ImageMap.model_validate(
        {"vllm": "registry.local/vllm:v1", "alertmanager": {"ref": "a:1", "executable": None}}
    )
    merged = ImageMap().overlay(mine)
    assert merged.vllm.ref == "registry.local/vllm:v1" and merged.vllm.gpu, "GPU request kept"
    assert merged.alertmanager.executable is None, "an explicit null drops the upstream name"
    assert merged.redis == ImageMap().redis


def test_image_map_file_typo_fails_with_file_and_field(tmp_path: Path) -> None:
    f = tmp_path / "images.yaml"
    f.write_text("nginx: {ref: nginx:1.27, executabel: /usr/sbin/nginx}\n")
    with pytest.raises(ConfigError, match="executabel"):
        load_image_map(f)


def test_spec_beats_file_beats_defaults(tmp_path: Path) -> None:
    f = tmp_path / "images.yaml"
    write_image_map(
        f, {"nginx": "llm-deploy-gate/nginx:local", "redis": "llm-deploy-gate/redis:local"}
    )
    spec = ImageMap.model_validate({"redis": "registry.local/redis:7"})
    resolved = resolve_image_map(spec, f)
    assert resolved.nginx == ImageRef(ref="llm-deploy-gate/nginx:local", executable=None)
    assert resolved.redis.ref == "registry.local/redis:7"
    assert resolved.prometheus == ImageMap().prometheus


def test_written_map_drops_upstream_executables(tmp_path: Path) -> None:
    f = tmp_path / "images.yaml"
    write_image_map(f, {"alertmanager": "llm-deploy-gate/alertmanager:local"})
    assert resolve_image_map(None, f).alertmanager.executable is None


def test_container_runs_argv_with_the_image_program_on_the_host_network(tmp_path: Path) -> None:
    s = container_settings(service(tmp_path), ImageRef(ref="llm-deploy-gate/llama-cpp:local"), "r1")
    assert s.entrypoint == ["llama-server"], "argv[0]'s basename, found on the image's PATH"
    assert s.command == ["-m", "/m.gguf", "--port", "9000"]
    assert s.kwargs["network_mode"] == "host" and s.kwargs["init"] is True
    assert s.kwargs["labels"][RUN_LABEL] == "r1"
    assert s.kwargs["user"] == f"{os.getuid()}:{os.getgid()}"
    assert s.volumes == [(str(tmp_path), str(tmp_path), "rw")]
    assert s.env == {"GATEWAY_CONFIG": "/run/gw.json"}, "the host PATH must not replace the image's"
    assert "device_requests" not in s.kwargs


def test_upstream_executable_replaces_argv0(tmp_path: Path) -> None:
    d = service(tmp_path, argv=["/usr/bin/prometheus-alertmanager", "--config.file", "x"])
    s = container_settings(d, ImageMap().alertmanager, "r1")
    assert s.entrypoint == ["/bin/alertmanager"] and s.command == ["--config.file", "x"]


def test_gpu_image_gets_every_gpu_and_the_hub_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_secret")
    d = service(tmp_path, argv=["vllm", "serve", "Qwen/Qwen2.5-0.5B-Instruct"], image="vllm")
    s = container_settings(d, ImageMap().vllm, "r1")
    (req,) = s.kwargs["device_requests"]
    assert req["Count"] == -1 and req["Capabilities"] == [["gpu"]]
    assert s.kwargs["ipc_mode"] == "host" and "user" not in s.kwargs
    assert s.entrypoint == ["vllm"] and s.command[0] == "serve"
    assert s.env["HF_TOKEN"] == "hf_secret"


def test_missing_mount_and_empty_argv_are_refused(tmp_path: Path) -> None:
    with pytest.raises(StackError, match="does not exist"):
        container_settings(service(tmp_path, mounts=[tmp_path / "nope"]), ImageMap().redis, "r")
    with pytest.raises(StackError, match="empty command line"):
        container_settings(service(tmp_path, argv=[]), ImageMap().redis, "r")


def _wheel(path: Path, name: str, requires: list[str]) -> None:
    meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n"
    meta += "".join(f"Requires-Dist: {r}\n" for r in requires)
    with zipfile.ZipFile(path / f"{name}-1.0-py3-none-any.whl", "w") as z:
        z.writestr(f"{name}-1.0.dist-info/METADATA", meta)


def test_dependencies_follow_the_target_python_not_the_venv(tmp_path: Path) -> None:
    _wheel(tmp_path, "redis", ['async-timeout>=4.0.3; python_full_version < "3.11.3"'])
    assert _missing(tmp_path, target_environment("3.11.2")) == ["async-timeout>=4.0.3"]
    assert _missing(tmp_path, target_environment("3.11.7")) == []


def test_extras_only_dependencies_are_not_fetched(tmp_path: Path) -> None:
    _wheel(tmp_path, "httpx", ['h2<5,>=3; extra == "http2"'])
    assert _missing(tmp_path, target_environment("3.11.2")) == []


def test_gateway_requirements_pin_the_venv_versions() -> None:
    pins = gateway_requirements().split()
    assert f"starlette=={importlib.metadata.version('starlette')}" in pins
    assert any(p.startswith("pydantic==") for p in pins)


def test_shared_libraries_leave_glibc_to_the_base_image() -> None:
    libs = shared_libraries(Path("/bin/ls"))
    assert not any(name.startswith(("libc.so", "ld-linux")) for name in libs)
    assert all(p.is_file() for p in libs.values())


def test_select_rejects_unknown_images() -> None:
    assert [i.key for i in select(["nginx"])] == ["nginx"]
    with pytest.raises(KeyError, match="valid: nginx"):
        select(["ngnix"])


def test_a_recycled_pid_is_not_taken_for_our_dockerd(tmp_path: Path) -> None:
    paths = dockerd.DockerdPaths(tmp_path)
    paths.pidfile.write_text(str(os.getpid()))  # alive, but not dockerd
    assert dockerd.running_pid(paths) is None
    assert dockerd.stop(paths) is False
