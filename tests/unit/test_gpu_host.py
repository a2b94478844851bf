"""The GPU preflight's logic on made-up machines (`FakeHost` answers every probe as told): which
parts are missing, what each fix says, which of the two GPU paths can run, the exit code."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from harness.commands.gpu import run_gpu_check
from harness.paths import PROJECT_ROOT
from harness.probes.gpu_host import (
    NVML_CHECK,
    VLLM_STACK,
    Seen,
    find_weights,
    image_keys,
    preflight,
)
from harness.spec.files import load_stack_spec
from harness.spec.images import ImageMap
from harness.spec.stack import StackSpec
from harness.stack.planner import build_plan

VLLM_STACK_FILE = PROJECT_ROOT / "stack" / "vllm-stack.yaml"
OK = Seen(True, "there")


@dataclass
class FakeHost:
    """A machine whose probes answer what the test says (everything present by default)."""

    answers: dict[str, Seen] = field(default_factory=dict)
    missing_images: set[str] = field(default_factory=set)
    asked_images: list[str] = field(default_factory=list)

    def _say(self, probe: str) -> Seen:
        return self.answers.get(probe, OK)

    def gpus(self) -> Seen:
        return self._say("gpus")

    def nvml_library(self) -> Seen:
        return self._say("nvml_library")

    def nvml_binding(self) -> Seen:
        return self._say("nvml_binding")

    def gpu_filler(self) -> Seen:
        return self._say("gpu_filler")

    def prometheus(self) -> Seen:
        return self._say("prometheus")

    def docker_engine(self) -> Seen:
        return self._say("docker_engine")

    def docker_gpu(self) -> Seen:
        return self._say("docker_gpu")

    def image(self, ref: str) -> Seen:
        self.asked_images.append(ref)
        if self._say("docker_engine").ok is not True:
            return Seen(None, f"{ref}: not checked")
        return Seen(False, f"{ref}: not in the engine") if ref in self.missing_images else OK

    def weights(self, model: str) -> Seen:
        return self._say("weights")


@pytest.fixture
def gpu_stack() -> StackSpec:
    return load_stack_spec(VLLM_STACK_FILE)


def test_a_machine_with_every_part_is_ready(gpu_stack: StackSpec) -> None:
    result = preflight(gpu_stack, FakeHost(), ImageMap())
    assert result.missing() == []
    assert result.can_run(NVML_CHECK) and result.can_run(VLLM_STACK)
    names = [p.name for p in result.parts]
    assert "vLLM image" in names and "weights of Qwen/Qwen2.5-0.5B-Instruct" in names


def test_a_gpu_machine_without_docker_or_vllm_runs_the_nvml_check_only(
    gpu_stack: StackSpec,
) -> None:
    # The lent GPU machines: driver, NVML, PyTorch; no docker engine, no image, no weights.
    host = FakeHost(
        answers={
            "docker_engine": Seen(False, "no engine answers"),
            "docker_gpu": Seen(None, "not checked: no docker engine"),
            "weights": Seen(False, "no copy in the cache"),
        }
    )
    result = preflight(gpu_stack, host, ImageMap())
    assert result.can_run(NVML_CHECK) and not result.can_run(VLLM_STACK)
    assert result.blocking(VLLM_STACK) == [
        "docker engine",
        "GPUs in containers",
        "vLLM image",
        "stack images",
        "weights of Qwen/Qwen2.5-0.5B-Instruct",
    ]
    by_name = {p.name: p for p in result.parts}
    # Unchecked is not present: it blocks, and its fix is still given.
    assert by_name["stack images"].seen.ok is None
    assert "not checked (no docker engine)" in by_name["stack images"].seen.detail
    assert "nvidia-ctk runtime configure" in by_name["GPUs in containers"].fix
    assert (
        "huggingface-cli download Qwen/Qwen2.5-0.5B-Instruct"
        in by_name["weights of Qwen/Qwen2.5-0.5B-Instruct"].fix
    )
    assert "HF_HUB_OFFLINE=1" in by_name["weights of Qwen/Qwen2.5-0.5B-Instruct"].fix


def test_no_gpu_blocks_both_paths_and_names_each_fix(gpu_stack: StackSpec) -> None:
    # This machine and CI: no driver, no NVML, nothing to allocate with.
    host = FakeHost(
        answers={
            "gpus": Seen(False, "nvidia-smi not found on PATH"),
            "nvml_library": Seen(False, "libnvidia-ml.so.1 not loadable"),
            "nvml_binding": Seen(False, "NVML did not start"),
            "gpu_filler": Seen(False, "neither PyTorch nor libcuda.so.1"),
        }
    )
    result = preflight(gpu_stack, host, ImageMap())
    assert result.blocking(NVML_CHECK) == [
        "NVIDIA driver",
        "NVML library",
        "Python NVML binding",
        "GPU memory filler",
    ]
    assert not result.can_run(VLLM_STACK)
    fixes = {p.name: p.fix for p in result.missing()}
    assert "nvidia-smi" in fixes["NVIDIA driver"]
    assert "pip install nvidia-ml-py" in fixes["Python NVML binding"]
    assert "PyTorch" in fixes["GPU memory filler"]


def test_missing_images_are_named_with_how_to_get_each(gpu_stack: StackSpec) -> None:
    images = ImageMap().overlay(
        ImageMap.model_validate({"gateway": "llm-deploy-gate/gateway:local"})
    )
    host = FakeHost(missing_images={"vllm/vllm-openai:v0.11.0", "llm-deploy-gate/gateway:local"})
    result = preflight(gpu_stack, host, images)
    by_name = {p.name: p for p in result.missing()}
    assert set(by_name) == {"vLLM image", "stack images"}
    assert by_name["vLLM image"].fix.startswith("docker pull vllm/vllm-openai:v0.11.0")
    assert "docker load" in by_name["vLLM image"].fix
    stack_images = by_name["stack images"]
    assert "1 of 10 missing: llm-deploy-gate/gateway:local" in stack_images.seen.detail
    assert "harness images build" in stack_images.fix
    # A local image cannot be pulled: only the upstream ones are offered to `docker pull`.
    assert "docker pull llm-deploy-gate" not in stack_images.fix


@pytest.mark.parametrize("spec_file", ["stack/stack.yaml", "stack/vllm-stack.yaml"])
def test_the_images_checked_are_the_ones_the_docker_provider_runs(
    spec_file: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hub"))
    spec = load_stack_spec(PROJECT_ROOT / spec_file)
    planned = {s.image for s in build_plan(spec, tmp_path / "run").services}
    assert set(image_keys(spec)) == planned


def test_the_command_lists_every_part_and_exits_2_when_one_is_missing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    lines: list[str] = []
    code = run_gpu_check(VLLM_STACK_FILE, True, lines.append, host=FakeHost())
    assert code == 0 and lines[-1] == "gpu-check: ready (exit 0)"
    lines.clear()
    host = FakeHost(answers={"gpus": Seen(False, "nvidia-smi not found on PATH")})
    code = run_gpu_check(VLLM_STACK_FILE, True, lines.append, host=host)
    assert code == 2
    text = "\n".join(lines)
    assert "MISSING   NVIDIA driver" in text and "nvidia-smi not found on PATH" in text
    assert "fix: install the NVIDIA driver" in text
    assert f"{NVML_CHECK}: not run (--preflight-only)" in text
    assert lines[-1] == "gpu-check: 1 of 10 parts missing (exit 2)"


def _snapshot(home: Path, model: str, files: dict[str, int]) -> Path:
    repo = home / "hub" / ("models--" + model.replace("/", "--"))
    snap = repo / "snapshots" / "abc123"
    snap.mkdir(parents=True)
    for name, size in files.items():
        (snap / name).write_bytes(b"x" * size)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc123\n")
    return snap


def test_weights_are_found_in_the_model_hub_cache(tmp_path: Path) -> None:
    model = "Qwen/Qwen2.5-0.5B-Instruct"
    whole = {"config.json": 10, "tokenizer.json": 10, "model.safetensors": 2048}
    snap = _snapshot(tmp_path, model, whole)
    seen = find_weights(model, tmp_path)
    assert seen.ok is True and str(snap) in seen.detail
    (snap / "model.safetensors").unlink()
    seen = find_weights(model, tmp_path)
    assert seen.ok is False and "lacks *.safetensors" in seen.detail
    gone = find_weights("Qwen/Other", tmp_path)
    assert gone.ok is False and "refs/main not found" in gone.detail
    # A local folder as the model works too.
    folder = tmp_path / "local-model"
    folder.mkdir()
    for name in ("config.json", "tokenizer_config.json", "pytorch_model.bin"):
        (folder / name).write_text("{}")
    assert find_weights(str(folder), tmp_path).ok is True
