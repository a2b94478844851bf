"""Per-process run state inside a Locust worker: run clock, open-loop pacer, samples, done file.

The Locust users call into one `WorkerRun` per process. It owns the deadline (so the schedule does
not depend on when Locust decides to stop users), records every request, and once the schedule is
over and in-flight requests drained (or the drain time ran out) writes `done-*.json`. The harness
stops Locust when every worker is done, so no sample is lost to Locust's stop/quit timing.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import gevent
import gevent.lock

from harness.data.samples import Sample, SampleWriter
from harness.load import clock
from harness.load.arrivals import arrival_offsets
from harness.load.client import LLMClient
from harness.load.config import WorkerConfig
from harness.load.dataset import read_conversations, select
from harness.load.forward import DONE, START, ForwardingWriter, Send
from harness.load.limits import fit_conversations, fit_trace
from harness.load.profile import Profile, build_profile
from harness.load.trace import TraceEntry, read_trace
from harness.load.workload import RequestPlan, Session, WorkloadGenerator
from harness.spec.load import ClosedLoop, OpenLoop

_FLUSH_EVERY_S = 0.5
_IDLE_S = 3600.0
_QUIT_AFTER_DONE_S = 1.0  # the done message is on its way to the master first


@dataclass
class _InFlight:
    plan: RequestPlan
    intended_s: float | None
    sent_s: float


class WorkerRun:
    def __init__(self, cfg: WorkerConfig) -> None:
        self.cfg = cfg
        spec = cfg.spec
        level = spec.load.rate_rps if isinstance(spec.load, OpenLoop) else float(spec.load.users)
        self.profile: Profile = build_profile(spec.shape, level, spec.duration_s)
        self.started = False
        self.worker = 0
        self.t0 = 0.0
        self.deadline = 0.0
        self.on_sample: Callable[[Sample], None] | None = None
        self._in_flight: dict[int, _InFlight] = {}
        self._abandoned: set[int] = set()
        self._pacer_done = not cfg.open_loop
        self._spawned = 0  # arrival greenlets spawned but not yet in flight
        self.scheduled = 0
        self.not_sent = 0
        self.cap_waits = 0
        self.unfinished = 0
        self.done = False

    # --- lifecycle ---------------------------------------------------------------------------
    def start(
        self,
        worker_index: int,
        on_sample: Callable[[Sample], None] | None = None,
        send: Send | None = None,
        quit_worker: Callable[[], None] = lambda: None,
    ) -> None:
        """Called at Locust's test_start in each worker (never in the master). With `send` (a
        worker whose master is elsewhere), samples, start and done go to the master instead, and
        `quit_worker` ends this worker a moment after its done message went."""
        if self.started:
            return
        self.started = True
        self.worker = worker_index
        self.on_sample = on_sample
        d = Path(self.cfg.sample_dir)
        self.send = send
        self.quit_worker = quit_worker
        self.writer: SampleWriter | ForwardingWriter = (
            ForwardingWriter(send, worker_index)
            if send is not None
            else SampleWriter(d / f"samples-{worker_index:03d}-{os.getpid()}.jsonl")
        )
        w = self.cfg.spec.workload
        convs, lengths = None, self.cfg.token_lengths
        if w.dataset is not None:
            chosen = select(
                read_conversations(Path(w.dataset.path)), w.dataset, lengths, seed=self.cfg.seed
            )
            fit = fit_conversations(
                chosen.conversations, w, self.cfg.context_tokens, lengths, self.cfg.template_tokens
            )
            convs = fit.items
            # A clipped first turn is no longer the size the tokenizer counted.
            clipped = {convs[i].index for i in fit.changed}
            lengths = {k: v for k, v in (lengths or {}).items() if k not in clipped} or None
        self.workload = WorkloadGenerator(
            w,
            self.cfg.model,
            self.cfg.api_key,
            self.cfg.seed,
            worker_index,
            workers=self.cfg.spec.processes,
            conversations=convs,
            one_token_words=self.cfg.one_token_words,
            instruction_tokens=self.cfg.instruction_tokens,
            token_lengths=lengths,
            template_tokens=self.cfg.template_tokens,
            block_tokens=load.trace.block_tokens
            if isinstance(load := self.cfg.spec.load, OpenLoop) and load.trace
            else 512,
        )
        # The schedule starts once the dataset is read: a large file takes seconds.
        self.t0 = clock.now()
        self.deadline = self.t0 + self.cfg.spec.duration_s
        self._cpu0 = time.process_time()
        if send is not None:
            send(START, {"worker": worker_index, "pid": os.getpid(), "t0_s": self.t0})
        else:
            start = d / f"start-{worker_index:03d}-{os.getpid()}.json"
            start.write_text(json.dumps({"t0_s": self.t0}))
        gevent.spawn(self._flusher)
        gevent.spawn(self._finisher)

    def flush(self) -> None:
        """Write the buffered samples out now (Locust is quitting: the run was stopped early)."""
        if self.started:
            self.writer.flush()

    def client(self, max_idle: int = 1) -> LLMClient:
        spec = self.cfg.spec
        return LLMClient(
            self.cfg.target_url,
            connect_timeout_s=spec.connect_timeout_s,
            request_timeout_s=spec.request_timeout_s,
            run_tag=self.cfg.run_tag,
            worker=self.worker,
            max_idle=max_idle,
            names=self.cfg.wire,
        )

    # --- requests ----------------------------------------------------------------------------
    def execute(self, client: LLMClient, plan: RequestPlan, intended_s: float | None) -> bool:
        """Send one request and record it; True when it succeeded (and was recorded)."""
        self._in_flight[plan.seq] = _InFlight(plan, intended_s, clock.now())
        try:
            sample = client.execute(plan, intended_s)
        finally:
            self._in_flight.pop(plan.seq, None)
        if plan.seq in self._abandoned or self.done:
            return False  # already recorded as unfinished
        self.writer.write(sample)
        if self.on_sample is not None:
            self.on_sample(sample)
        return sample.ok

    def closed_loop_step(self, client: LLMClient, session: Session | None = None) -> Session | None:
        """One iteration of a closed-loop user: a request, or idling once the run is over.

        With multi-turn sessions the user's conversation goes in and the one to continue comes
        back (None: start a new one): the answer is appended, then the think time passes. A
        failed turn ends its conversation (there is no answer to append)."""
        if not self.started or clock.now() >= self.deadline:
            gevent.sleep(_IDLE_S)
            return None
        sessions = self.cfg.spec.workload.sessions
        if sessions is None:
            self.execute(client, self.workload.next_request(), None)
            return None
        if session is None or session.over:
            session = self.workload.new_session()
        if not self.execute(client, self.workload.next_turn(session), None) or session.over:
            return None
        session.answered(client.last_text)
        if sessions.think_time_s:
            gevent.sleep(sessions.think_time_s)
        return session

    def think_time_s(self) -> float:
        load = self.cfg.spec.load
        return load.think_time_s if isinstance(load, ClosedLoop) else 0.0

    def pace(self) -> None:
        """The open-loop schedule of this worker: one greenlet per arrival, at its intended time.

        An arrival that finds every slot taken waits for one; that wait is generator lag and is
        reported (and invalidates the run when large), never silently absorbed.
        """
        load = self.cfg.spec.load
        assert isinstance(load, OpenLoop)
        n = self.cfg.spec.processes
        slots = gevent.lock.BoundedSemaphore(max(1, load.max_in_flight // n))
        client = self.client(max_idle=max(1, load.max_in_flight // n))
        give_up = self.deadline + self.cfg.spec.drain_timeout_s
        sized: Iterator[tuple[float, TraceEntry | None]]
        if load.trace is not None:
            policy = self.cfg.spec.workload.context_overflow
            entries = read_trace(Path(load.trace.path), load.trace)
            trace = fit_trace(entries, self.cfg.context_tokens, policy).items[self.worker :: n]
            end = self.cfg.spec.duration_s
            sized = iter([(e.offset_s, e) for e in trace if e.offset_s < end])
        else:
            offs = arrival_offsets(load, self.profile, self.worker, n, self.cfg.seed)
            sized = ((off, None) for off in offs)
        try:
            for off, entry in sized:
                intended = self.t0 + off
                delay = intended - clock.now()
                if delay > 0:
                    gevent.sleep(delay)
                if slots.locked():
                    self.cap_waits += 1
                if not slots.acquire(timeout=max(0.0, give_up - clock.now())):
                    self.not_sent += 1 + sum(1 for _ in sized)
                    break
                self.scheduled += 1
                # Counted before it runs, so the finisher cannot miss an arrival not yet started.
                self._spawned += 1
                plan = (
                    self.workload.for_trace(entry)
                    if entry is not None
                    else self.workload.next_request()
                )
                gevent.spawn(self._arrival, client, plan, intended, slots)
        finally:
            self._pacer_done = True

    def _arrival(
        self,
        client: LLMClient,
        plan: RequestPlan,
        intended: float,
        slots: gevent.lock.BoundedSemaphore,
    ) -> None:
        try:
            self._in_flight[plan.seq] = _InFlight(plan, intended, clock.now())
            self._spawned -= 1
            self.execute(client, plan, intended)
        finally:
            slots.release()

    # --- background --------------------------------------------------------------------------
    def _flusher(self) -> None:
        while not self.done:
            gevent.sleep(_FLUSH_EVERY_S)
            self.writer.flush()

    def _finisher(self) -> None:
        gevent.sleep(max(0.0, self.deadline - clock.now()))
        give_up = self.deadline + self.cfg.spec.drain_timeout_s
        while (not self._pacer_done or self._spawned or self._in_flight) and clock.now() < give_up:
            gevent.sleep(0.05)
        self._record_unfinished()
        self.done = True
        self.writer.close()
        self._write_done()

    def _record_unfinished(self) -> None:
        now = clock.now()
        for seq, f in list(self._in_flight.items()):
            self._abandoned.add(seq)
            self.unfinished += 1
            self.writer.write(
                Sample(
                    worker=self.worker,
                    seq=seq,
                    kind=f.plan.kind,
                    tenant=f.plan.tenant,
                    prompt_id=f.plan.prompt_id,
                    dataset_id=f.plan.dataset_id,
                    repeated=f.plan.repeated,
                    intended_s=f.intended_s,
                    sent_s=f.sent_s,
                    e2e_ms=(now - f.sent_s) * 1000.0,
                    error="unfinished",
                    error_detail="in flight when the drain time ran out (latency is a lower bound)",
                    client_request_id=f"{self.cfg.run_tag}-{self.worker}-{seq}",
                )
            )

    def _write_done(self) -> None:
        wall = clock.now() - self.t0
        info = {
            "worker": self.worker,
            "pid": os.getpid(),
            "open_loop": self.cfg.open_loop,
            "t0_s": self.t0,
            "deadline_s": self.deadline,
            "finished_s": clock.now(),
            "samples": self.writer.count,
            "scheduled": self.scheduled,
            "not_sent": self.not_sent,
            "cap_waits": self.cap_waits,
            "unfinished": self.unfinished,
            "cpu_s": time.process_time() - self._cpu0,
            "wall_s": wall,
        }
        if self.send is not None:
            self.send(DONE, info)
            # Nothing is left for this worker to do; its master (elsewhere) may not tell it so.
            gevent.spawn_later(_QUIT_AFTER_DONE_S, self.quit_worker)
            return
        path = Path(self.cfg.sample_dir) / f"done-{self.worker:03d}-{os.getpid()}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(info))
        tmp.replace(path)
