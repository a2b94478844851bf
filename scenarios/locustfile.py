"""The LLM user on Locust. Run by `harness load` (it writes the config this file reads), e.g.

    HARNESS_LOAD_CONFIG=run/load/config.json locust -f scenarios/locustfile.py --headless LLMUser

LLMUser: closed loop, one keep-alive connection per user, next request when the last one ended.
OpenLoopUser: one per worker process; sends on the schedule (constant / Poisson / burst) with a
greenlet per arrival, so a slow server does not slow the arrivals down.
PlanShape: drives the user count (ramp / step / spike for closed loop; one pacer per worker for
open loop) and is only the safety stop: the harness ends the run when every worker is done.

Every request is recorded by harness.load (samples-*.jsonl; a worker whose master runs elsewhere,
`harness load --external-workers`, sends them to the master, which writes them); Locust's own
stats get the same requests through the request event, for its console and CSV only (its
percentiles are rounded).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gevent
from locust import LoadTestShape, User, events, task
from locust.env import Environment
from locust.runners import MasterRunner

from harness.data.samples import Sample
from harness.load.config import load_worker_config
from harness.load.forward import MasterSink
from harness.load.worker import WorkerRun
from harness.load.workload import Session

CONFIG = load_worker_config()
RUN = WorkerRun(CONFIG)


def _report_to_locust(environment: Environment, sample: Sample) -> None:
    exc = None if sample.ok else Exception(f"{sample.error} {sample.status}: {sample.error_detail}")
    environment.events.request.fire(  # type: ignore[no-untyped-call]
        request_type="POST",
        name=sample.kind,
        response_time=sample.e2e_ms,
        response_length=sample.output_chunks,
        exception=exc,
        context={},
    )


@events.init.add_listener  # type: ignore[untyped-decorator]
def _on_init(environment: Environment, **_: Any) -> None:
    # Workers elsewhere send their samples here: the master writes them into the run's folder.
    if CONFIG.forward_to_master and isinstance(environment.runner, MasterRunner):
        MasterSink(Path(CONFIG.sample_dir)).register(environment.runner.register_message)


@events.test_start.add_listener  # type: ignore[untyped-decorator]
def _on_test_start(environment: Environment, **_: Any) -> None:
    runner = environment.runner
    if runner is None or isinstance(runner, MasterRunner):
        return
    # LocalRunner and WorkerRunner both carry worker_index (0 when local).
    index = int(getattr(runner, "worker_index", 0))
    forward = CONFIG.forward_to_master
    RUN.start(
        index,
        on_sample=lambda s: _report_to_locust(environment, s),
        send=runner.send_message if forward else None,
        quit_worker=runner.quit,
    )


@events.quitting.add_listener  # type: ignore[untyped-decorator]
def _on_quitting(environment: Environment, **_: Any) -> None:
    # The harness stops Locust with SIGTERM; after an early stop (Ctrl-C on `harness load`)
    # the samples still in this worker's buffer belong in the partial report.
    RUN.flush()


class LLMUser(User):
    def wait_time(self) -> float:
        return RUN.think_time_s()

    def on_start(self) -> None:
        self.llm = RUN.client()
        self.session: Session | None = None  # multi-turn: this user's conversation

    def on_stop(self) -> None:
        self.llm.close()

    @task
    def request(self) -> None:
        self.session = RUN.closed_loop_step(self.llm, self.session)


class OpenLoopUser(User):
    @task
    def pace(self) -> None:
        RUN.pace()
        gevent.sleep(CONFIG.hard_stop_s)


class PlanShape(LoadTestShape):
    def tick(self) -> tuple[int, float] | None:
        t = float(self.get_run_time())  # type: ignore[no-untyped-call]
        if t > CONFIG.hard_stop_s:
            return None
        spec = CONFIG.spec
        if CONFIG.open_loop:
            return spec.processes, float(spec.processes)
        load = spec.load
        users = max(1, round(RUN.profile.level_at(min(t, spec.duration_s - 1e-6))))
        spawn_rate = getattr(load, "spawn_rate", None) or float(max(users, 1) * 100)
        return users, spawn_rate
