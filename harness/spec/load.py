"""The load spec: what traffic to send (workload), how (closed or open loop, shape), for how long.

Pure data (no I/O). Where to send it (target URL, keys of a running stack) is decided at run time.
Durations accept seconds or strings such as "30s", "2m", "500ms".
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, field_validator, model_validator

from harness.spec.base import Strict

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration_s(value: object) -> object:
    """'30s' -> 30.0, '2m' -> 120.0, '500ms' -> 0.5, 12 -> 12.0; anything else goes to pydantic."""
    if isinstance(value, str):
        m = _DURATION.match(value)
        if not m:
            raise ValueError(
                f"not a duration: {value!r} (use seconds, or e.g. '30s', '2m', '500ms')"
            )
        return float(m.group(1)) * _UNIT_S[m.group(2)]
    return value


Seconds = Annotated[float, BeforeValidator(parse_duration_s)]


class ClosedLoop(Strict):
    """A fixed number of users, each sending its next request when the previous one finished.

    Throughput falls when the server slows, so a stall delays few requests (coordinated omission):
    use it to model interactive users, not to measure latency under a given arrival rate.
    """

    kind: Literal["closed"] = "closed"
    users: int = Field(4, ge=1, le=10_000)
    # Users started per second (Locust's spawn rate); None starts them all at once.
    spawn_rate: float | None = Field(None, gt=0)
    think_time_s: Seconds = Field(0.0, ge=0)


class Trace(Strict):
    """Arrivals and sizes replayed from a recorded trace: each line a request at its recorded time.

    mooncake: JSONL with `timestamp` (ms), `input_length`, `output_length` (tokens), `hash_ids`.
    azure: CSV with TIMESTAMP (a date-time), ContextTokens, GeneratedTokens. Times count from the
    trace's first request; `speedup` divides them (2: twice as fast). A relative path is relative
    to the spec file's folder.
    """

    path: str = Field(min_length=1)
    format: Literal["auto", "mooncake", "azure"] = "auto"
    speedup: float = Field(1.0, gt=0, le=10_000)
    # Replay at most this many requests (the run also ends at duration_s).
    max_requests: int = Field(100_000, ge=1, le=10_000_000)
    # Skip this many requests from the start of the trace.
    offset: int = Field(0, ge=0)
    # Mooncake hash_ids: each id stands for a block of this many prompt tokens (words without the
    # tokenizer); requests sharing leading ids share that prefix, as in the recorded traffic.
    block_tokens: int = Field(512, ge=1, le=100_000)


class OpenLoop(Strict):
    """Requests arrive on a schedule regardless of how fast earlier ones finish.

    Every request has an intended send time; latency is reported from it too, and the run is
    marked invalid when the generator fell behind its own schedule.
    """

    kind: Literal["open"] = "open"
    rate_rps: float = Field(5.0, gt=0, le=100_000)
    # constant: evenly spaced; poisson: exponential gaps (seeded); burst: `burst_size` requests at
    # the same instant, groups spaced so the mean rate is `rate_rps` (rate-limit tests); trace:
    # the recorded times and sizes of `trace` (rate_rps and the shape are not used then).
    arrival: Literal["constant", "poisson", "burst", "trace"] = "poisson"
    trace: Trace | None = None
    burst_size: int = Field(10, ge=1)
    # Requests in flight at once per run; an arrival finding no free slot waits (and counts as lag).
    max_in_flight: int = Field(1000, ge=1)
    # The run is invalid when p99 of (actual - intended send time) exceeds this.
    max_send_lag_ms: float = Field(50.0, gt=0)

    @model_validator(mode="after")
    def _trace_given(self) -> OpenLoop:
        if (self.arrival == "trace") != (self.trace is not None):
            raise ValueError("arrival: trace and a `trace:` section go together (give both)")
        return self


LoadModel = Annotated[ClosedLoop | OpenLoop, Field(discriminator="kind")]


class Shape(Strict):
    """How the load level (users, or arrival rate) changes over the run, relative to the level.

    steady: the level throughout. ramp: from `start_fraction` of it up to it over `ramp_s` (default
    the whole run), then held. step: `steps` equal steps up to it. spike: `base_fraction` of it,
    `spike_multiplier` times it for `spike_s` from `spike_at_s` (default: the middle third).
    """

    kind: Literal["steady", "ramp", "step", "spike"] = "steady"
    start_fraction: float = Field(0.1, ge=0, le=1)
    ramp_s: Seconds | None = Field(None, gt=0)
    steps: int = Field(4, ge=1, le=100)
    base_fraction: float = Field(1.0, gt=0, le=1)
    spike_multiplier: float = Field(3.0, ge=1, le=100)
    spike_at_s: Seconds | None = Field(None, ge=0)
    spike_s: Seconds | None = Field(None, gt=0)


class Tenant(Strict):
    """One API key the load is spread over (per-key rate limits, cost accounting)."""

    name: str = Field(min_length=1)
    api_key: str = Field(min_length=1)
    weight: float = Field(1.0, gt=0)


class Dataset(Strict):
    """Prompts from a conversations file: one JSON array of conversations (the ShareGPT file) or
    one a line (JSONL), in either layout: ShareGPT {"id": ..., "conversations": [{"from":
    "human", "value": ...}, {"from": "gpt", ...}]} or {"messages": [{"role": "user", "content":
    ...}, ...]}. Entries without a usable conversation are skipped and counted. A relative path is
    relative to the spec file's folder. Conversations are drawn by the run's seed.
    """

    path: str = Field(min_length=1)
    # random: drawn with replacement by the seed; sequential: in file order, wrapping around.
    order: Literal["random", "sequential"] = "random"
    # Keep conversations whose first user message has this many words (tokens when
    # `workload.tokenizer` is on) at least / at most.
    min_prompt_len: int = Field(1, ge=1)
    max_prompt_len: int | None = Field(None, ge=1)
    # Use at most this many conversations (the first ones that pass the filters; reading stops
    # there). Without it, all that pass, up to 10,000: past that a uniform sample by the seed.
    limit: int | None = Field(None, ge=1)
    # Ask for the recorded answer's length (in words, as max_tokens) instead of workload.max_tokens.
    answer_len_as_max_tokens: bool = False

    @model_validator(mode="after")
    def _range(self) -> Dataset:
        if self.max_prompt_len is not None and self.max_prompt_len < self.min_prompt_len:
            raise ValueError("max_prompt_len is below min_prompt_len")
        return self


class Sessions(Strict):
    """Multi-turn conversations: each closed-loop user keeps one for `turns` turns; every turn sends
    the whole conversation so far (previous answers included) plus the next user message. With a
    dataset, a conversation's own user turns are used (as many as it has, up to `turns`). Turns go
    to /v1/chat/completions (a conversation has roles)."""

    turns: int = Field(4, ge=1, le=100)
    # Pause between a turn's answer and the next turn (a user reading and typing).
    think_time_s: Seconds = Field(0.0, ge=0)
    # Words of each generated follow-up user message (without a dataset).
    turn_words: int = Field(16, ge=1, le=100_000)


class SharedPrefix(Strict):
    """`groups` fixed system prompts (documents) of `words` words; this `share` of requests starts
    with one of them (picked evenly), the rest have none. What a server's prefix cache reuses."""

    groups: int = Field(4, ge=1, le=10_000)
    words: int = Field(256, ge=1, le=200_000)
    share: float = Field(0.8, ge=0, le=1)


class Workload(Strict):
    """What each request looks like. Prompts come from the run's seed: same seed, same prompts."""

    # Share of requests sent to /v1/completions; the rest go to /v1/chat/completions.
    completion_share: float = Field(0.0, ge=0, le=1)
    prompt_words: int = Field(24, ge=1, le=200_000)
    # Prompt lengths vary by +/- this fraction around prompt_words.
    prompt_words_jitter: float = Field(0.25, ge=0, lt=1)
    max_tokens: int = Field(64, ge=1)
    stream: bool = True
    # vLLM / llama.cpp extension: generate exactly max_tokens (fixed work per request).
    ignore_eos: bool = False
    temperature: float | None = Field(None, ge=0, le=2)
    # This share of every fresh prompt's words is one prefix common to the whole run (a shared
    # system prompt; exercises prefix caching). 0: every prompt is new from its first word.
    prefix_share: float = Field(0.0, ge=0, lt=1)
    # Cache mix: this share of requests repeats one of `repeated_pool` fixed prompts.
    repeated_share: float = Field(0.0, ge=0, le=1)
    repeated_pool: int = Field(8, ge=1)
    tenants: tuple[Tenant, ...] = ()
    # Opt-in production-like workloads (none changes the default one above).
    dataset: Dataset | None = None
    sessions: Sessions | None = None
    shared_prefix: SharedPrefix | None = None
    # Size prompts in the serving model's tokens (its /tokenize endpoint): prompt_words and
    # trace input lengths become token counts, dataset length filters count tokens.
    tokenizer: bool = False
    # Dataset and trace requests whose prompt plus max_tokens exceed the model's context (as its
    # server reports it) are counted before the run, then: report (sent as they are), skip (not
    # sent) or clip (the prompt shortened to the context minus max_tokens).
    context_overflow: Literal["report", "skip", "clip"] = "report"

    @field_validator("tenants")
    @classmethod
    def _unique_tenants(cls, v: tuple[Tenant, ...]) -> tuple[Tenant, ...]:
        names = [t.name for t in v]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"tenant names must be unique; repeated: {', '.join(dupes)}")
        return v


class LoadSpec(Strict):
    kind: Literal["load"] = "load"
    name: str = "chat"
    description: str = ""
    workload: Workload = Workload()
    load: LoadModel = ClosedLoop()
    shape: Shape = Shape()
    duration_s: Seconds = Field(30.0, gt=0, le=86_400)
    # Locust worker processes on this machine (1: a single process, no master).
    processes: int = Field(1, ge=1, le=64)
    # Seed of prompts and Poisson arrivals; None: a fresh one per run (printed and stored in the
    # report), so a run never measures the server's prompt cache by accident.
    seed: int | None = None
    # Model name sent in requests; None asks the target's /v1/models.
    model: str | None = None
    request_timeout_s: Seconds = Field(60.0, gt=0)
    connect_timeout_s: Seconds = Field(5.0, gt=0)
    # After the schedule ends, how long in-flight requests may still finish before they are
    # recorded as unfinished.
    drain_timeout_s: Seconds = Field(30.0, ge=0)
    # SLOs: "ttft_p95_ms<=500" (aggregate, checked) or "ttft_ms<=500" (per request: goodput).
    slos: tuple[str, ...] = ()

    @field_validator("slos")
    @classmethod
    def _slos_parse(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        from harness.spec.slo import parse_slo

        for expr in v:
            parse_slo(expr)  # raises ValueError with the reason
        return v

    @model_validator(mode="after")
    def _shape_fits(self) -> LoadSpec:
        s = self.shape
        if s.kind == "ramp" and s.ramp_s is not None and s.ramp_s > self.duration_s:
            raise ValueError(f"shape.ramp_s ({s.ramp_s}s) is longer than duration_s")
        if s.kind == "spike":
            at = s.spike_at_s if s.spike_at_s is not None else self.duration_s / 3
            if at >= self.duration_s:
                raise ValueError(f"shape.spike_at_s ({at}s) is not inside the run")
        if isinstance(self.load, OpenLoop) and self.load.rate_rps * self.duration_s > 10_000_000:
            raise ValueError("rate_rps * duration_s exceeds 10 million requests")
        if self.workload.sessions is not None and not isinstance(self.load, ClosedLoop):
            raise ValueError(
                "workload.sessions needs a closed loop (load.kind: closed): each user keeps "
                "its conversation"
            )
        return self
