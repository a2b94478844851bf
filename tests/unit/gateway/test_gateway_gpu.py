"""GPU series: present per GPU when NVML works, absent (not zero) otherwise.

No GPU here, so NVML is replaced by `FakeNvml`, a stand-in module with the pynvml calls used.
"""

from __future__ import annotations

import sys
import types
from types import SimpleNamespace

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from gateway.gpu import GpuCollector, process_rss_bytes

GPU_SERIES = ("llm_gpu_utilization_percent", "llm_gpu_memory_used", "llm_gpu_memory_total")


def scrape(collector: GpuCollector) -> str:
    registry = CollectorRegistry()
    registry.register(collector)
    return generate_latest(registry).decode()


def fake_nvml(count: int, fail_init: bool = False) -> types.ModuleType:
    mod = types.ModuleType("pynvml")

    def init() -> None:
        if fail_init:
            raise RuntimeError("NVML Shared Library Not Found")

    mod.nvmlInit = init  # type: ignore[attr-defined]
    mod.nvmlDeviceGetCount = lambda: count  # type: ignore[attr-defined]
    mod.nvmlDeviceGetHandleByIndex = lambda i: i  # type: ignore[attr-defined]
    mod.nvmlDeviceGetUtilizationRates = lambda h: SimpleNamespace(gpu=40 + h)  # type: ignore[attr-defined]
    mod.nvmlDeviceGetMemoryInfo = lambda h: SimpleNamespace(used=96, total=100)  # type: ignore[attr-defined]
    return mod


def test_series_per_gpu_with_nvml(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml(count=2))
    text = scrape(GpuCollector())
    assert 'llm_gpu_utilization_percent{gpu="1"} 41.0' in text
    assert 'llm_gpu_memory_used{gpu="0"} 96.0' in text
    assert 'llm_gpu_memory_total{gpu="0"} 100.0' in text


@pytest.mark.parametrize("nvml", [None, fake_nvml(count=0), fake_nvml(count=1, fail_init=True)])
def test_series_absent_without_a_usable_gpu(
    monkeypatch: pytest.MonkeyPatch, nvml: types.ModuleType | None
) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", nvml)  # None makes the import fail
    collector = GpuCollector()
    assert not collector.available
    text = scrape(collector)
    assert not any(name in text for name in GPU_SERIES)


def test_process_rss_is_positive() -> None:
    assert process_rss_bytes() > 1_000_000
