"""GPUMemoryHigh on real data, on a machine with a GPU and no stack (`harness gpu-check`).

Three local processes, all on 127.0.0.1: the gateway's NVML collector served alone
(`python -m gateway.gpu`, the same code that serves llm_gpu_memory_* on the gateway's /metrics), a
real Prometheus loading the stack spec's alert rules (the deployed expression and threshold, the
hold shortened as the gate's live rules are, chaos/README.md), and a filler that allocates the
card's memory above the threshold (harness/faults/gpu_fill.py). Measured: the fullest card's share
and the alert's state at idle, the share the fill reached, how long the alert took to fire once
the figure crossed the threshold, and to resolve once the filler exited. Judged in
harness/verdict/gpu_memory.py. Everything started is stopped, whatever happens.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from harness.clients.poll import poll_until
from harness.clients.prometheus import PrometheusClient
from harness.data.progress import Progress
from harness.errors import ServiceStartError
from harness.observe.live_rules import short_window_rules
from harness.paths import PROJECT_ROOT, STACK_DIR
from harness.spec.stack import PrometheusSpec
from harness.stack import render
from harness.stack.plan import ServiceDef
from harness.stack.planner import prometheus_def
from harness.stack.ports import free_ports
from harness.stack.process import ProcessLauncher, ProcessService
from harness.stack.readiness import HttpReady
from harness.verdict.gpu_memory import GpuAlertEvidence

ALERT = "GPUMemoryHigh"
_RATIO = "max(llm_gpu_memory_used / llm_gpu_memory_total)"


@dataclass(frozen=True)
class GpuAlertSetup:
    """How the check runs. The defaults are the real thing; tests swap in a fake NVML module (on
    `exporter_path`) and a fake filler, and plant a broken rule in `rules`."""

    # The rule's `for` while the check runs (the deployed one is minutes long).
    hold: str = "5s"
    fire_within_s: float = 60.0
    resolve_within_s: float = 60.0
    # The filler frees the card by itself after this long, even if nothing stops it.
    fill_hold_s: float = 180.0
    fill_within_s: float = 120.0
    # Rule groups to load instead of the stack spec's own (shortened) rules.
    rules: dict[str, Any] | None = None
    exporter_path: tuple[Path, ...] = ()
    filler: Sequence[str] = (sys.executable, "-m", "harness.faults.gpu_fill")
    env: dict[str, str] = field(default_factory=dict)


def _python_path(*first: Path) -> str:
    parts = [str(p) for p in first] + [os.environ.get("PYTHONPATH", "")]
    return os.pathsep.join(p for p in parts if p)


def _ratio(prom: PrometheusClient) -> float | None:
    samples = prom.query(_RATIO)
    return samples[0].value if samples else None


def _state(prom: PrometheusClient) -> str:
    states = {a.state for a in prom.alerts() if a.name == ALERT}
    return next((s for s in ("firing", "pending") if s in states), "inactive")


def _wait_ready(svc: ProcessService, timeout_s: float = 30.0) -> None:
    ready = svc.definition.ready

    def probe() -> str | None:
        return "exited" if not svc.alive() else ready.probe()

    why = poll_until(probe, timeout_s, 0.25, until=lambda w: w is None or w == "exited")
    if why is not None:
        reason = f"exited with code {svc.exit_code()}" if why == "exited" else why
        raise ServiceStartError(svc.name, reason, svc.log_tail(10), svc.definition.hint)


def _filler_said(svc: ProcessService) -> str:
    """How the filler filled (its JSON line's `via`), or why it did not (its last line)."""
    lines = [line for line in svc.log_tail(20).splitlines() if line.strip()]
    for line in reversed(lines):
        try:
            return str(json.loads(line)["via"])
        except (ValueError, KeyError, TypeError):
            continue
    code = svc.exit_code()
    last = lines[-1] if lines else "no output"
    return f"filler exited {code}: {last}" if code is not None else f"filler: {last}"


def check_gpu_memory_alert(
    prometheus: PrometheusSpec,
    run_dir: Path,
    progress: Progress,
    setup: GpuAlertSetup | None = None,
) -> GpuAlertEvidence:
    """Fill the card above `prometheus.gpu_memory_ratio` and watch the rule through Prometheus."""
    setup = setup or GpuAlertSetup()
    threshold = prometheus.gpu_memory_ratio
    target = threshold + (1 - threshold) / 2  # half the headroom above the threshold
    exporter_port, prom_port, alertmanager_port = free_ports(3)
    config = run_dir / "config"
    config.mkdir(parents=True, exist_ok=True)
    rules_file = config / "alerts.yml"
    rules = setup.rules or short_window_rules(render.alert_rules(prometheus), "15s", setup.hold)
    rules_file.write_text(render.to_yaml(rules), encoding="utf-8")
    prom_conf = config / "prometheus.yml"
    exporter_target = render.ScrapeTarget("gpu", f"127.0.0.1:{exporter_port}", {})
    prom_conf.write_text(
        render.to_yaml(
            render.prometheus_config(
                prometheus,
                rules_file=rules_file,
                # Nothing listens there: the alert's state is read from Prometheus itself.
                alertmanager_address=f"127.0.0.1:{alertmanager_port}",
                targets=[exporter_target],
            )
        ),
        encoding="utf-8",
    )
    env = {**setup.env, "PYTHONPATH": _python_path(*setup.exporter_path, STACK_DIR)}
    exporter = ServiceDef(
        name="gpu-exporter",
        role="exporter",
        argv=[sys.executable, "-m", "gateway.gpu", "--port", str(exporter_port)],
        port=exporter_port,
        ready=HttpReady(f"http://127.0.0.1:{exporter_port}/metrics"),
        image="gateway",
        tier=0,
        env=env,
        hint="the NVML exporter needs nvidia-ml-py and the driver's libnvidia-ml.so.1",
    )
    prom_url = f"http://127.0.0.1:{prom_port}"
    prom_def = prometheus_def(prom_conf, run_dir, prom_port, tier=0)
    filler_def = ServiceDef(
        name="gpu-filler",
        role="fault",
        argv=[
            *setup.filler,
            "--ratio",
            f"{target:.4f}",
            "--hold-s",
            f"{setup.fill_hold_s:g}",
        ],
        port=0,
        ready=HttpReady(""),  # never probed: the figure in Prometheus says when it is filled
        image="gateway",
        tier=0,
        env={**setup.env, "PYTHONPATH": _python_path(PROJECT_ROOT)},
    )
    launcher = ProcessLauncher()
    started: list[ProcessService] = []

    def launch(definition: ServiceDef) -> ProcessService:
        svc = launcher.launch(definition, run_dir / "logs" / f"{definition.name}.log")
        started.append(svc)
        return svc

    try:
        for definition in (exporter, prom_def):
            _wait_ready(launch(definition))
        progress(
            f"NVML exporter and Prometheus up; GPUMemoryHigh at {threshold:g}, for {setup.hold}"
        )
        with PrometheusClient(prom_url, timeout_s=10) as prom:
            # Prometheus hands a new target to its scraper within about 5 s.
            idle = poll_until(lambda: _ratio(prom), 30, 0.5, until=lambda r: r is not None)
            gpus = len(prom.query("llm_gpu_memory_total"))
            idle_state = _state(prom)
            evidence = GpuAlertEvidence(
                threshold=threshold,
                hold=setup.hold,
                gpus=gpus,
                idle_ratio=idle,
                idle_state=idle_state,
                filled_ratio=None,
                filler="not started",
                fired_after_s=None,
                fire_within_s=setup.fire_within_s,
                resolved_after_s=None,
                resolve_within_s=setup.resolve_within_s,
            )
            if idle is None or idle >= threshold or idle_state == "firing":
                return evidence
            progress(f"idle: {idle:.1%} of the card in use; filling it to {target:.1%}")
            filler = launch(filler_def)
            filled = poll_until(
                lambda: _ratio(prom),
                setup.fill_within_s,
                0.5,
                until=lambda r: (r is not None and r > threshold) or not filler.alive(),
            )
            crossed = time.monotonic()
            fired = None
            if filled is not None and filled > threshold:
                progress(f"filled: {filled:.1%}; waiting for {ALERT}")
                state = poll_until(
                    lambda: _state(prom), setup.fire_within_s, 0.5, until=lambda s: s == "firing"
                )
                fired = time.monotonic() - crossed if state == "firing" else None
            evidence = replace(
                evidence, filled_ratio=filled, filler=_filler_said(filler), fired_after_s=fired
            )
            filler.stop()
            freed = time.monotonic()
            if fired is None:
                return evidence
            progress(f"{ALERT} fired after {fired:.1f} s; memory freed, waiting for it to resolve")
            state = poll_until(
                lambda: _state(prom), setup.resolve_within_s, 0.5, until=lambda s: s == "inactive"
            )
            resolved = time.monotonic() - freed if state == "inactive" else None
            return replace(evidence, resolved_after_s=resolved)
    finally:
        for svc in reversed(started):
            svc.stop()
