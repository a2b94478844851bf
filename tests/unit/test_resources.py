import sys
import time
from pathlib import Path

from harness.observe.resources import ResourceSampler
from harness.stack.plan import ServiceDef
from harness.stack.process import ProcessService
from harness.stack.readiness import TcpReady


def test_sampler_measures_a_busy_process_and_its_child(tmp_path: Path) -> None:
    # A parent that spins one core in a child: CPU is summed over descendants.
    code = "import subprocess, sys; subprocess.run([sys.executable, '-c', 'while True: pass'])"
    svc = ProcessService(
        ServiceDef(
            name="spinner",
            role="test",
            argv=[sys.executable, "-c", code],
            port=1,
            ready=TcpReady("127.0.0.1", 1),
            image="none",
            tier=0,
        ),
        tmp_path / "spinner.log",
    )
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
    svc = ProcessService(
        ServiceDef(
            name="gone",
            role="test",
            argv=["true"],
            port=1,
            ready=TcpReady("127.0.0.1", 1),
            image="none",
            tier=0,
        ),
        tmp_path / "gone.log",
    )
    sampler = ResourceSampler({"gone": svc}, interval_s=0.05).start()
    time.sleep(0.2)
    (usage,) = sampler.stop()
    assert usage.samples == 0 and usage.cpu_percent_mean is None
