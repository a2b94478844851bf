"""A rolling update of the primary pool's model servers, one replica at a time, under load.

Each replica is taken out of every gateway's rotation (its address left out of the gateway's
config file, then SIGHUP: the gateway re-reads its pools and the streams it holds run on), drained
(the server's own count of running requests falls to none, bounded by the switch's drain timeout),
stopped, started as the candidate's primary server on the same port, shown ready (its health
check, then one streamed request answered: the cold start is process start to that first token),
and put back. `rolling.drain: false` kills each replica at once instead: what an update without
drain does to the streams it held.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from harness.clients.http import http_get
from harness.clients.poll import poll_until
from harness.data.progress import Progress
from harness.load.clock import now
from harness.probes.http import chat_body, stream_chat, unique_prompt
from harness.spec.rollout import RolloutSpec
from harness.spec.stack import StackSpec
from harness.stack import RunningStack
from harness.stack.plan import ServiceDef
from harness.stack.planner import ModelServerSlot, model_server_def
from harness.stack.provider import Launcher, ServiceHandle
from harness.verdict.rollout import Move

# The servers' own gauges of requests being processed (vLLM and its simulator; llama.cpp).
RUNNING_GAUGES = ("vllm:num_requests_running", "llamacpp:requests_processing")


def server_metric(url: str, names: tuple[str, ...]) -> float | None:
    """The sum of a model server's series of these names (None: none exported, or no answer)."""
    try:
        text = http_get(f"{url}/metrics", timeout=2.0).text
    except httpx.HTTPError:
        return None
    total, seen = 0.0, False
    for line in text.splitlines():
        if line.split("{", 1)[0].split(" ", 1)[0] in names:
            total += float(line.rsplit(" ", 1)[1])
            seen = True
    return total if seen else None


def _gateway_pools(stack: RunningStack) -> list[dict[str, Any] | None]:
    """Each gateway's primary pool as its /healthz gives it (None: no answer)."""
    pools: list[dict[str, Any] | None] = []
    for gw in stack.endpoints.gateways:
        try:
            pool = http_get(f"{gw}/healthz", timeout=2.0).json()["pools"]["primary"]
        except (httpx.HTTPError, ValueError, KeyError, TypeError):
            pool = None
        pools.append(pool if isinstance(pool, dict) else None)
    return pools


def _sent_by_gateways(stack: RunningStack, routed: str) -> int:
    """Requests the gateways have sent to `routed` and not yet ended; a gateway that does not
    say (not answering, or too old to count them) counts none, leaving the server's gauge."""
    total = 0
    for pool in _gateway_pools(stack):
        counts = None if pool is None else pool.get("in_flight")
        if isinstance(counts, dict):
            total += int(counts.get(routed, 0))
    return total


def drain_replica(
    stack: RunningStack, url: str, routed: str, bound_s: float
) -> tuple[float | None, bool]:
    """Wait until the replica (out of rotation) has no request: none the gateways sent to it
    (`routed`, the address they dial) still open, and none running by its own gauge (`url`).
    The gateways' count comes first: a request already sent may not have reached the server's
    gauge yet. (seconds it took, or None when not within `bound_s`; whether it drained)"""
    since = now()

    def open_requests() -> float | None:
        running = server_metric(url, RUNNING_GAUGES)
        return None if running is None else running + _sent_by_gateways(stack, routed)

    left = poll_until(open_requests, bound_s, 0.1, until=lambda n: n is not None and n <= 0)
    drained = left is not None and left <= 0
    return (now() - since if drained else None), drained


def primary_urls(stack: RunningStack) -> list[str]:
    """The primary replicas' addresses as the gateways dial them (through their proxies)."""
    proxies = stack.endpoints.proxies
    return [f"http://{proxies[p]}" for p in sorted(proxies) if p.startswith("primary-")]


def set_rotation(stack: RunningStack, urls: list[str], confirm_s: float = 5.0) -> None:
    """Every gateway's primary pool: these addresses, re-read now (config file, SIGHUP), and
    returns once every gateway says so in its /healthz (bounded by `confirm_s`: a gateway on a
    busy machine may take its signal late, and a replica stopped before then gets requests)."""
    for svc in stack.services.values():
        if svc.definition.role != "gateway":
            continue
        path = Path(svc.definition.env["GATEWAY_CONFIG"])
        config = json.loads(path.read_text())
        config["primary_urls"] = urls
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(config, indent=2))
        tmp.replace(path)
        if svc.alive():  # a gateway a fault killed gets the file when it starts again
            svc.reload()
    want = [u.rstrip("/") for u in urls]
    poll_until(
        lambda: _gateway_pools(stack),
        confirm_s,
        0.05,
        # A gateway that does not answer sends no request anywhere.
        until=lambda pools: all(p is None or p.get("urls") == want for p in pools),
    )


def _set_rotation(stack: RunningStack, leave_out: str | None) -> None:
    """All primary replicas in rotation but `leave_out`."""
    proxies = stack.endpoints.proxies
    keep = [
        u for u in primary_urls(stack) if leave_out is None or u != f"http://{proxies[leave_out]}"
    ]
    set_rotation(stack, keep)


def restore_rotation(stack: RunningStack) -> None:
    """Every primary replica back in every gateway's rotation (a rollout that ended midway)."""
    _set_rotation(stack, None)


def first_token_s(url: str, model: str, timeout_s: float) -> float | None:
    """Seconds to the first token of one streamed request straight to the server."""
    body = chat_body(unique_prompt("Say hello in one word."), max_tokens=4)
    body["model"] = model
    try:
        r = stream_chat(url, None, body, timeout_s=timeout_s)
    except httpx.HTTPError:
        return None
    return r.ttft_s if r.status == 200 and not r.stream_error else None


def start_replica(
    stack: RunningStack,
    launcher: Launcher,
    launched: list[ServiceHandle],
    definition: ServiceDef,
    model: str,
    log_name: str,
    within_s: float,
) -> tuple[ServiceHandle, float | None, str | None]:
    """Start one model server and show it ready: its health check, then one streamed request
    answered. (its handle, seconds from its start to that first token or None, why not)"""
    started = now()
    handle = launcher.launch(definition, stack.run_dir / "logs" / log_name)
    launched.append(handle)
    why = poll_until(
        definition.ready.probe,
        within_s,
        0.1,
        until=lambda reason: reason is None or not handle.alive(),
    )
    if why is None and handle.alive():
        left_s = within_s - (now() - started)
        url = f"http://127.0.0.1:{definition.port}"
        if first_token_s(url, model, max(1.0, left_s)) is not None:
            return handle, now() - started, None
    return handle, None, why or "its stream failed"


def replace_replicas(
    spec: RolloutSpec,
    stack: RunningStack,
    candidate: StackSpec,
    launcher: Launcher,
    progress: Progress,
    alive: Callable[[], None],
    launched: list[ServiceHandle],
) -> list[Move]:
    """Replace each primary replica in turn; stop at the first that does not come back (it is
    started again as the baseline's, so the pool stays whole). One Move per replica; every
    process started goes into `launched` (the caller stops them)."""
    moves: list[Move] = []
    names = sorted(n for n, s in stack.services.items() if s.definition.role == "model_server")
    primaries = [n for n in names if stack.services[n].definition.pool == "primary"]
    for i, name in enumerate(primaries):
        if i:
            time.sleep(spec.rolling.pause_s)
        alive()
        move = _replace_one(spec, stack, candidate, launcher, launched, name)
        moves.append(move)
        drain_s, first = move.drain_s, move.figures["cold_start_s"]
        progress(
            f"  {name}: "
            + (
                "drained in " + (f"{drain_s:.1f}s" if drain_s is not None else "-") + ", "
                if spec.rolling.drain
                else "killed without drain, "
            )
            + (f"first token {first:.1f}s after its start" if first is not None else "not ready")
            + f", back in rotation after {move.figures['out_of_rotation_s']:.1f}s"
        )
        if move.problems:
            break
    return moves


def _replace_one(
    spec: RolloutSpec,
    stack: RunningStack,
    candidate: StackSpec,
    launcher: Launcher,
    launched: list[ServiceHandle],
    name: str,
) -> Move:
    rolling = spec.rolling
    old = stack.services[name]
    port = old.definition.port
    url = f"http://127.0.0.1:{port}"
    at = now()
    drain_s: float | None = None
    drained: bool | None = None
    if rolling.drain:
        _set_rotation(stack, name)
        routed = f"http://{stack.endpoints.proxies[name]}"
        drain_s, drained = drain_replica(stack, url, routed, spec.switch.drain_timeout_s)
        old.stop()
    else:
        old.kill()
    new_def: ServiceDef = model_server_def(
        ModelServerSlot(name, "primary", port), candidate.primary, stack.run_dir
    )
    new, first, why = start_replica(
        stack,
        launcher,
        launched,
        new_def,
        candidate.primary.server.served_name,
        f"{name}-new.log",
        rolling.ready_timeout_s,
    )
    stack.services[name] = new
    problems: tuple[str, ...] = ()
    if first is None:
        problems = (
            f"the new {name} answered no first token within {rolling.ready_timeout_s:g}s "
            f"of its start ({why}); started again as the baseline's",
        )
        new.stop()
        restored = launcher.launch(old.definition, stack.run_dir / "logs" / f"{name}-restored.log")
        launched.append(restored)
        stack.services[name] = restored
        poll_until(
            old.definition.ready.probe,
            rolling.ready_timeout_s,
            0.2,
            until=lambda reason: reason is None,
        )
    _set_rotation(stack, None)
    back = now()
    return Move(
        f"rolling update: {name} replaced",
        at,
        None,
        until_s=back,
        drain_s=drain_s,
        drained=drained,
        figures={
            "cold_start_s": None if first is None else round(first, 2),
            "out_of_rotation_s": round(back - at, 2),
        },
        problems=problems,
    )
