"""How much of its prompts a workload repeats: the share of the prompt tokens it sent that a
prefix cache holding everything sent before could have served. The yardstick of the engine's
prefix-cache check (harness/verdict/engine.py): a server's hit share is judged against it.

Known for two workloads:
- shared prefixes: a request that starts with a prefix an earlier request already sent can reuse
  all of it (`words` words; the rest of its prompt is its own);
- a Mooncake trace: each request can reuse its longest run of leading `hash_ids` that began an
  earlier request's prompt, `block_tokens` each (the trace's own theoretical hit share; a gate
  that replays it look after look finds every block of the later looks warm).
In words where the tokenizer is off (the shared prefix and the prompts come from one vocabulary,
so the share in words stands for the share in tokens); the first request of each prefix on each
replica is a miss a single cache would not have, so a real server lands somewhat below.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.data.samples import Sample
from harness.errors import ConfigError
from harness.load.trace import read_trace
from harness.load.workload import INSTRUCTION
from harness.spec.load import LoadSpec, OpenLoop


@dataclass(frozen=True)
class Reuse:
    share: float | None  # None: not known for this workload (`how` says why)
    how: str
    requests: int = 0


def served_by_server(samples: Sequence[Sample]) -> list[Sample]:
    """The requests a model server answered (not refused, not from the gateway's cache), in the
    order they were sent."""
    out = [
        s
        for s in samples
        if s.ok and (s.x_served_by or "").lower() != "cache" and (s.x_cache or "").lower() != "hit"
    ]
    return sorted(out, key=lambda s: s.sent_s)


def workload_reuse(spec: LoadSpec, samples: Sequence[Sample]) -> Reuse:
    """The theoretical prefix-cache hit share of the requests `samples` sent under `spec`."""
    w = spec.workload
    trace = spec.load.trace if isinstance(spec.load, OpenLoop) else None
    if trace is not None:
        return _trace_reuse(spec, samples)
    sp = w.shared_prefix
    if sp is None:
        return Reuse(None, "the workload has no shared prefix or trace, so its reuse is not known")
    if w.sessions is not None or w.dataset is not None:
        return Reuse(
            None,
            "a shared prefix with sessions or a dataset: the prompts' own lengths and history "
            "are not known here",
        )
    own = len(INSTRUCTION.split()) + w.prompt_words
    served = served_by_server(samples)
    seen: set[int] = set()
    reusable = total = 0.0
    for s in served:
        g = s.prefix_group
        total += s.planned_tokens or (own + (sp.words if g is not None else 0))
        if g is not None:
            reusable += sp.words if g in seen else 0
            seen.add(g)
    if not total:
        return Reuse(None, "no request was answered by a model server")
    return Reuse(
        reusable / total,
        f"{len(served)} requests, {sp.groups} shared prefixes of {sp.words} words on "
        f"{sp.share:.0%} of them: every prefix after its first request is reusable",
        len(served),
    )


def _trace_reuse(spec: LoadSpec, samples: Sequence[Sample]) -> Reuse:
    assert isinstance(spec.load, OpenLoop) and spec.load.trace is not None
    trace = spec.load.trace
    try:
        entries = read_trace(Path(trace.path), trace)
    except ConfigError as exc:
        return Reuse(None, f"the trace cannot be read: {exc}")
    scheduled = [e for e in entries if e.offset_s < spec.duration_s]
    if not scheduled or not any(e.hash_ids for e in scheduled):
        return Reuse(None, "the trace has no hash_ids, so its reuse is not known")
    sent = len(samples)
    seen: set[tuple[int, ...]] = set()
    reusable = total = 0.0
    # Each look replays the schedule from its start: the n-th request sent is entry n mod len.
    for i in range(sent):
        e = scheduled[i % len(scheduled)]
        run = 0
        while run < len(e.hash_ids) and e.hash_ids[: run + 1] in seen:
            run += 1
        reusable += min(run * trace.block_tokens, e.input_tokens)
        total += e.input_tokens
        seen.update(e.hash_ids[: k + 1] for k in range(len(e.hash_ids)))
    if not total:
        return Reuse(None, "no request was sent")
    return Reuse(
        reusable / total,
        f"{sent} trace requests: leading hash_ids an earlier request began with are reusable "
        f"({trace.block_tokens} tokens each)",
        sent,
    )
