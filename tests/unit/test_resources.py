import sys
import time
from pathlib import Path

from process_support import bare_service

from harness.observe.resources import ResourceSampler


def test_sampler_measures_a_busy_process_and_its_child(tmp_path: Path) -> None:
    # A parent that spins one core in a child: CPU is summed over descendants.
    code = "import subprocess, sys; subprocess.run([sys.executable, '-c', 'while True: pass'])"
    svc = bare_service("spinner", [sys.executable, "-c", code], tmp_path / "spinner.log")
    svc.start()
    try:
        sampler = ResourceSampler({"spinner": svc}, interval_s=0.2).start()
        time.sleep(1.5)
        (usage,) = sampler.stop()
    finally:
        svc.stop()
    assert usage.samples >= 3
    assert usage.cpu_percent_max is not None and usage.cpu_percent_max > 20
    assert usage.rss_mb_max is not None and usage.rss_mb_max > 1


def test_a_stopped_service_is_reported_without_samples(tmp_path: Path) -> None:
    svc = bare_service("gone", ["true"], tmp_path / "gone.log")
    sampler = ResourceSampler({"gone": svc}, interval_s=0.05).start()
    time.sleep(0.2)
    (usage,) = sampler.stop()
    assert usage.samples == 0 and usage.cpu_percent_mean is None
