"""Calibration: how fast this machine serves the project's pinned llama.cpp build and model, one
request at a time, before the gate judges anything.

CI runners differ by several times in CPU speed, so absolute millisecond SLOs on the embedded CPU
stack are either loose or flaky. A profile may write an SLO relative to the calibration instead
(`ttft_p95_ms<=6x`: the p95 under the gate's load at most 6 times the calibrated median). The
calibration server is started here, apart from the candidate's stack, with the reference stack's
model-server settings; it serves the gate's own workload (prompt length, output budget) with
fresh prompts, one request at a time, and is stopped again.
"""

from __future__ import annotations

import random
import statistics
import time
from pathlib import Path

from harness.clients.poll import poll_until
from harness.data.progress import Progress
from harness.errors import StackError
from harness.load.workload import make_prompt
from harness.measure.calibration import Calibration
from harness.probes.http import chat_body, stream_chat
from harness.spec.load import LoadSpec
from harness.spec.stack import LlamaCppServer
from harness.stack.plan import ServiceDef
from harness.stack.ports import free_ports
from harness.stack.process import ProcessService
from harness.stack.readiness import HttpReady
from harness.tools import default_model_path, find_binary


def calibrate(load: LoadSpec, run_dir: Path, progress: Progress, requests: int = 12) -> Calibration:
    """Start the pinned llama-server, time `requests` streamed answers one at a time, stop it."""
    t0 = time.monotonic()
    server = LlamaCppServer()  # the reference stack's model-server settings
    (port,) = free_ports(1)
    model = default_model_path()
    binary = find_binary("llama-server")
    url = f"http://127.0.0.1:{port}"
    definition = ServiceDef(
        name="calibration",
        role="model_server",
        argv=[
            str(binary),
            "-m",
            str(model),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "-np",
            "1",
            "-c",
            str(server.context),
            "-t",
            str(server.threads),
            "--alias",
            "calibration",
        ],
        port=port,
        ready=HttpReady(f"{url}/health"),
        image="llama_cpp",
        tier=0,
    )
    service = ProcessService(definition, run_dir / "logs" / "calibration.log")
    progress(f"calibration: {binary.name} with {model.name}, {requests} requests one at a time")
    service.start()
    try:
        why = poll_until(
            definition.ready.probe, 60, 0.2, until=lambda why: why is None or not service.alive()
        )
        if why is not None:
            raise StackError(
                f"the calibration llama-server did not start ({why}); "
                f"log tail:\n{service.log_tail()}"
            )
        rng = random.Random()
        words, budget = load.workload.prompt_words, load.workload.max_tokens
        ttft, itl, e2e = [], [], []
        for i in range(requests + 1):  # the first one warms the server up and is not counted
            r = stream_chat(
                url, None, chat_body(make_prompt(rng, words), max_tokens=budget, temperature=0.7)
            )
            if r.status != 200 or r.ttft_s is None or len(r.chunk_times_s) < 2:
                raise StackError(f"calibration request failed: status {r.status} {r.error_body}")
            if i == 0:
                continue
            times = r.chunk_times_s
            ttft.append(r.ttft_s * 1000)
            itl.append((times[-1] - times[0]) / (len(times) - 1) * 1000)
            e2e.append(r.total_s * 1000)
    finally:
        service.stop()
    cal = Calibration(
        server=str(binary),
        model=model.name,
        threads=server.threads,
        requests=requests,
        prompt_words=words,
        max_tokens=budget,
        ttft_ms=round(statistics.median(ttft), 1),
        itl_ms=round(statistics.median(itl), 2),
        e2e_ms=round(statistics.median(e2e), 1),
        duration_s=round(time.monotonic() - t0, 1),
    )
    progress(
        f"  calibrated: TTFT {cal.ttft_ms} ms, ITL {cal.itl_ms} ms, e2e {cal.e2e_ms} ms "
        f"(medians of {requests}, {cal.duration_s} s)"
    )
    return cal
