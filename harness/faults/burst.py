"""A burst of requests on one API key, sent to the stack's entry on top of an experiment's load:
its own loop, bounded by a rate, a count and the fault's window, and the figures of its answers.

The bodies are one prompt with one token, so after the first the gateway's cache answers them:
the burst tests the limiter, not how many requests the model servers take.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx

from harness import wire
from harness.clients.http import new_async_client
from harness.errors import ConfigError, ConfigProblem
from harness.spec.experiment import TrafficBurst
from harness.stack.external import is_loopback
from harness.stack.provider import RunningStack

# Requests in flight at once; past it the burst waits (and sends late) rather than pile up.
MAX_IN_FLIGHT = 32
REQUEST_TIMEOUT_S = 30.0
# After the window: how long answers still in flight are awaited before they are given up.
DRAIN_S = 10.0
WINDOW_S = 60.0


@dataclass(frozen=True)
class BurstPlan:
    url: str  # the stack's entry, where the load goes
    key: str
    per_minute: int  # the budget the answers are judged against


@dataclass(frozen=True)
class BurstAnswer:
    sent_at: float  # wall clock, seconds
    answered_at: float
    status: int  # 0: no answer (connection failed, timed out or given up)
    retry_after: str | None = None

    @property
    def decided_at(self) -> float:
        """When the limiter decided, as near as the client can tell: halfway there and back."""
        return (self.sent_at + self.answered_at) / 2


def plan_burst(fault: TrafficBurst, stack: RunningStack, source: str) -> BurstPlan:
    """Where the burst goes, with which key and budget; a ConfigError when the stack cannot say."""
    load_key = stack.endpoints.api_key
    url = stack.endpoints.nginx.rstrip("/")
    spec = stack.spec
    external = spec.external is not None
    problems: list[ConfigProblem] = []
    if not external and not is_loopback(url):
        problems.append(ConfigProblem("fault", f"the stack's entry {url} is not on loopback"))
    auth = spec.gateway.settings.auth
    key = fault.key
    if key is None:
        others = [k for k in auth.api_keys if k != load_key] if not external else []
        if external:
            problems.append(
                ConfigProblem(
                    "fault.key",
                    "an external stack's keys are not the harness's to know: name the burst's key",
                )
            )
        elif not auth.enabled:
            problems.append(
                ConfigProblem(
                    "fault", "the stack's gateway has auth off: no key to limit the burst by"
                )
            )
        elif not others:
            problems.append(
                ConfigProblem(
                    "fault.key",
                    "the stack's gateway has no API key besides the load's; add one "
                    "(gateway.settings.auth.api_keys) or name it here",
                )
            )
        key = others[0] if others else ""
    elif key == load_key:
        problems.append(
            ConfigProblem(
                "fault.key",
                "the load's own key: the burst must use "
                "another, whose refusals leave the load alone",
            )
        )
    per_minute = fault.per_minute
    if per_minute is None:
        limits = spec.gateway.settings.rate_limit
        declared = not external or "gateway" in spec.model_fields_set
        if limits.enabled and declared:
            per_minute = limits.requests_per_minute
        else:
            problems.append(
                ConfigProblem(
                    "fault.per_minute",
                    "the stack declares no rate limit to judge the burst against: name the budget",
                )
            )
    if problems:
        raise ConfigError(source, problems)
    assert per_minute is not None
    return BurstPlan(url=url, key=key, per_minute=per_minute)


class Burst(threading.Thread):
    """`rate_rps` requests a second, at most `max_requests`, until `stop()`: each answer's status
    and Retry-After kept."""

    def __init__(self, plan: BurstPlan, rate_rps: float, max_requests: int) -> None:
        super().__init__(name="traffic-burst", daemon=True)
        self.plan, self.rate_rps, self.max_requests = plan, rate_rps, max_requests
        self.answers: list[BurstAnswer] = []
        self.error: BaseException | None = None
        self._ended = threading.Event()
        self.prompt = f"Say ok. (burst {uuid.uuid4().hex[:8]})"

    def run(self) -> None:
        try:
            asyncio.run(self._send_all())
        except BaseException as exc:  # handed to the caller by stop()
            self.error = exc

    def stop(self) -> list[BurstAnswer]:
        """End the burst (answers in flight get DRAIN_S) and return its answers."""
        self._ended.set()
        self.join(timeout=DRAIN_S + 5)
        if self.error is not None:
            raise self.error  # judged by its kind (`is_stack_side`), like any other
        return list(self.answers)

    async def _send_all(self) -> None:
        headers = wire.current().auth(self.plan.key)
        body = {
            "messages": [{"role": "user", "content": self.prompt}],
            "max_tokens": 1,
            "temperature": 0,
            "stream": False,
        }
        limits = httpx.Limits(max_connections=MAX_IN_FLIGHT)
        slots = asyncio.Semaphore(MAX_IN_FLIGHT)
        async with new_async_client(
            headers=headers, limits=limits, timeout=REQUEST_TIMEOUT_S
        ) as http:

            async def one() -> None:
                sent = time.time()
                try:
                    r = await http.post(f"{self.plan.url}/v1/chat/completions", json=body)
                    status, retry = r.status_code, r.headers.get("retry-after")
                except (httpx.HTTPError, asyncio.CancelledError):
                    status, retry = 0, None
                finally:
                    slots.release()
                self.answers.append(BurstAnswer(sent, time.time(), status, retry))

            tasks: list[asyncio.Task[None]] = []
            start = time.monotonic()
            for i in range(self.max_requests):
                # Short sleeps: the window's end stops the burst within 50 ms, whatever its rate.
                while not self._ended.is_set() and (
                    (wait := start + i / self.rate_rps - time.monotonic()) > 0 or slots.locked()
                ):
                    await asyncio.sleep(min(max(wait, 0.005), 0.05))
                if self._ended.is_set():
                    break
                await slots.acquire()  # free: only this loop takes slots
                tasks.append(asyncio.create_task(one()))
            while not self._ended.is_set():
                await asyncio.sleep(0.05)
            _, late = await asyncio.wait(tasks, timeout=DRAIN_S) if tasks else (set(), set())
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late)


@dataclass(frozen=True)
class MinuteAdmissions:
    """A clock minute's admissions as the client can bound them: the limiter decided somewhere
    between the request's send and its answer, so one whose round trip crossed the minute's turn
    may belong to either side."""

    surely: int  # sent and answered inside the minute
    possibly: int  # whose round trip overlaps the minute

    def __str__(self) -> str:
        extra = self.possibly - self.surely
        return f"{self.surely}" + (f" (+{extra} across its turn)" if extra else "")


@dataclass(frozen=True)
class BurstFigures:
    sent: int
    admitted: int  # answered 200
    refused: int  # answered 429
    other: dict[int, int]  # any other status (0: no answer) -> count
    # 429s whose Retry-After is whole seconds; None when there was no 429.
    retry_after_share: float | None
    retry_after_s: tuple[int, int] | None  # the smallest and largest Retry-After given
    admitted_per_minute: dict[str, MinuteAdmissions]  # clock minute (UTC, HH:MM) -> admitted
    # Each admission's first and last clock minute (minutes since the epoch) of its round trip.
    admitted_spans: tuple[tuple[int, int], ...]
    most_admitted_in_60s: int  # over any 60 s, not only clock minutes (round trips' midpoints)

    def per_minute_text(self) -> str:
        return ", ".join(f"{m} UTC: {n}" for m, n in self.admitted_per_minute.items()) or "none"


def _minute(t: float) -> int:
    return int(t // WINDOW_S)


def burst_figures(answers: list[BurstAnswer]) -> BurstFigures:
    statuses = Counter(a.status for a in answers)
    refused = [a for a in answers if a.status == 429]
    given = [int(a.retry_after) for a in refused if a.retry_after and a.retry_after.isdigit()]
    spans = tuple(
        sorted((_minute(a.sent_at), _minute(a.answered_at)) for a in answers if a.status == 200)
    )
    surely = Counter(first for first, last in spans if first == last)
    possibly = Counter(m for first, last in spans for m in range(first, last + 1))
    per_minute = {
        datetime.fromtimestamp(m * WINDOW_S, UTC).strftime("%H:%M"): MinuteAdmissions(
            surely[m], possibly[m]
        )
        for m in sorted(possibly)
    }
    admitted = sorted(a.decided_at for a in answers if a.status == 200)
    most, lo = 0, 0
    for hi, t in enumerate(admitted):  # a sliding window over the admissions, in time order
        while t - admitted[lo] >= WINDOW_S:
            lo += 1
        most = max(most, hi - lo + 1)
    return BurstFigures(
        sent=len(answers),
        admitted=statuses[200],
        refused=statuses[429],
        other={s: n for s, n in sorted(statuses.items()) if s not in (200, 429)},
        retry_after_share=len(given) / len(refused) if refused else None,
        retry_after_s=(min(given), max(given)) if given else None,
        admitted_per_minute=per_minute,
        admitted_spans=spans,
        most_admitted_in_60s=most,
    )


def write_answers(answers: list[BurstAnswer], path: Path) -> None:
    """Every answer of the burst, one JSON object a line, in the order they came."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(asdict(a)) + "\n" for a in answers))
