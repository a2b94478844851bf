"""Bring a stack up tier by tier, prove it ready, and tear it down whatever happens."""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from harness.clients.http import http_post
from harness.clients.poll import poll_until
from harness.clients.prometheus import PrometheusClient, PrometheusError
from harness.clients.prometheus import Target as PromTarget
from harness.clients.toxiproxy import ToxiproxyClient
from harness.clients.webhook import AlertReceiver
from harness.data.progress import Progress
from harness.errors import ConfigError, ConfigProblem, ServiceStartError, StackError
from harness.paths import new_run_dir
from harness.spec.stack import StackSpec
from harness.stack import ownership
from harness.stack.plan import ServiceDef, ServicePlan
from harness.stack.planner import SharedServices, build_plan
from harness.stack.ports import port_is_listening
from harness.stack.provider import Endpoints, Launcher, RunningStack, ServiceHandle


def _quiet(_: str) -> None:
    return None


def make_launcher(provider: str, spec: StackSpec, run_dir: Path) -> Launcher:
    """The launcher of a provider kind; an unknown kind lists the valid ones."""
    if provider == "local":
        from harness.stack.process import ProcessLauncher

        return ProcessLauncher()
    if provider == "docker":
        from harness.spec.images import resolve_image_map
        from harness.stack.docker import ContainerLauncher

        launcher: Launcher = ContainerLauncher(resolve_image_map(spec.images), run_id=run_dir.name)
        return launcher
    raise ConfigError(
        "--provider",
        [ConfigProblem("provider", f"unknown provider {provider!r}; valid: local, docker")],
    )


def _wait_ready(
    started: list[ServiceHandle], progress: Progress, t0: float, poll_s: float = 0.1
) -> None:
    """Wait until every service of a tier passes its readiness check; fail fast on exit."""
    pending = {s.name: s for s in started}
    reasons: dict[str, str] = {}

    def not_ready() -> dict[str, ServiceHandle]:
        for name, svc in list(pending.items()):
            code = svc.exit_code()
            if code is not None:
                raise ServiceStartError(
                    name,
                    f"exited with code {code} before it was ready",
                    svc.log_tail(),
                    svc.definition.hint,
                )
            reason = svc.definition.ready.probe()
            if reason is None:
                del pending[name]
            else:
                reasons[name] = reason
        return pending

    # Each service has its own timeout: all are looked at until the soonest is due, and so on.
    begun = time.monotonic()
    for svc in sorted(started, key=lambda s: s.definition.ready_timeout_s):
        d, name = svc.definition, svc.name
        left = poll_until(
            not_ready, d.ready_timeout_s - (time.monotonic() - begun), poll_s, until=lambda p: not p
        )
        if not left:
            break
        if name in left:
            raise ServiceStartError(
                name,
                f"not ready after {d.ready_timeout_s:g}s ({d.ready.describe()}: {reasons[name]})",
                svc.log_tail(),
                d.hint or f"check that {name} listens on 127.0.0.1:{d.port}",
            )
    progress(f"[{time.monotonic() - t0:5.1f}s] ready: {', '.join(s.name for s in started)}")


def _warm_up(services: list[ServiceHandle]) -> None:
    """Send each service's warm-up request (in parallel); a failure is a start failure."""
    todo = [s for s in services if s.definition.warmup is not None]
    if not todo:
        return

    def one(svc: ServiceHandle) -> None:
        w = svc.definition.warmup
        assert w is not None
        try:
            r = http_post(w.url, json=w.body, timeout=w.timeout_s)
        except httpx.HTTPError as exc:
            raise ServiceStartError(
                svc.name, f"warm-up request failed: {exc}", svc.log_tail()
            ) from exc
        if r.status_code >= 400:
            raise ServiceStartError(
                svc.name,
                f"warm-up request answered {r.status_code}: {r.text[:200]}",
                svc.log_tail(),
            )

    with ThreadPoolExecutor(max_workers=len(todo)) as pool:
        for future in [pool.submit(one, s) for s in todo]:
            future.result()


def _create_proxies(plan: ServicePlan, toxiproxy_url: str) -> None:
    with ToxiproxyClient(toxiproxy_url) as toxi:
        for p in plan.proxies:
            toxi.create_proxy(p.name, p.listen, p.upstream)


def wait_targets_up(prometheus_url: str, timeout_s: float = 30.0) -> list[PromTarget]:
    """Wait until Prometheus has scraped every target successfully; return the targets."""
    with PrometheusClient(prometheus_url, timeout_s=2.0) as prom:

        def targets() -> list[PromTarget]:
            try:
                return prom.targets()
            except PrometheusError:
                return []

        seen = poll_until(
            targets,
            timeout_s,
            0.25,
            until=lambda ts: bool(ts) and all(t.health == "up" for t in ts),
        )
    down = [
        f"{t.job} {t.scrape_url} ({t.health}: {t.last_error})" for t in seen if t.health != "up"
    ]
    if seen and not down:
        return seen
    raise StackError(
        "Prometheus did not see every target up within "
        f"{timeout_s:g}s; down: " + ("; ".join(down) or "no targets yet")
    )


def scrape_beside(host: RunningStack, guest: RunningStack) -> None:
    """Have the host's Prometheus scrape the guest's targets too (a stack that shares it), and
    wait until it sees them all up. Each target keeps its stack's `version` label."""
    if host.prometheus is None:
        raise StackError(f"{host.spec.name}: no Prometheus of its own to scrape another stack")
    targets = [*host.scrape_targets, *guest.scrape_targets]
    host.prometheus.config.write_text(host.prometheus.render(targets))
    host.services["prometheus"].reload()
    wanted = {t.address for t in targets}
    with PrometheusClient(host.endpoints.prometheus, timeout_s=2.0) as prom:

        def seen() -> set[str]:
            try:
                return {t.instance for t in prom.targets() if t.health == "up"}
            except PrometheusError:
                return set()

        up = poll_until(seen, 30.0, 0.25, until=lambda ts: wanted <= ts)
    if not wanted <= up:
        raise StackError(
            "Prometheus did not see the shared stack's targets up within 30s: "
            + ", ".join(sorted(wanted - up))
        )


def stack_ports(plan: ServicePlan) -> list[int]:
    """Every port the stack listens on: services, Toxiproxy's proxies, the alert webhook, and
    those only named in command lines and endpoints (nginx's status port)."""
    ports = {s.port for s in plan.services} | {p.listen_port for p in plan.proxies}
    named = " ".join(
        [*(a for s in plan.services for a in s.argv), *map(str, plan.endpoints.values())]
    )
    ports |= {int(m) for m in re.findall(r"127\.0\.0\.1:(\d+)", named)}
    if plan.webhook_port is not None:
        ports.add(plan.webhook_port)
    return sorted(ports - plan.borrowed_ports)


def _teardown(
    services: list[ServiceHandle], progress: Progress, receiver: AlertReceiver | None
) -> list[str]:
    """Stop in reverse start order; return the names of ports still listening afterwards."""
    for svc in reversed(services):
        try:
            svc.stop()
        except Exception as exc:  # keep stopping the others
            progress(f"warning: stopping {svc.name} failed: {exc}")
    if receiver is not None:
        receiver.close()
    leftovers = []
    for svc in services:
        if port_is_listening(svc.definition.port):
            leftovers.append(f"{svc.name} (127.0.0.1:{svc.definition.port})")
    return leftovers


@contextlib.contextmanager
def start_stack(
    spec: StackSpec,
    *,
    run_dir: Path | None = None,
    provider: str | None = None,
    progress: Progress = _quiet,
    wait_for_scrapes: bool = True,
    allow_remote: bool = False,
    shared: SharedServices | None = None,
    label: str | None = None,
) -> Iterator[RunningStack]:
    """Bring the stack up; yield it once every service is ready; always tear it down. An
    external stack (`provider: external`) is only checked and attached, never started.
    `shared`, `label`: as `build_plan`'s (a stack beside another, using some of its services;
    `scrape_beside` has the other's Prometheus scrape it)."""
    run_dir = run_dir or new_run_dir("stack")
    if spec.provider == "external":
        if provider not in (None, "external"):
            raise ConfigError(
                "--provider",
                [
                    ConfigProblem(
                        "provider",
                        f"the stack spec is external (started elsewhere); --provider "
                        f"{provider} cannot start it",
                    )
                ],
            )
        from harness.stack.external import attach_external

        with attach_external(spec, run_dir, progress, allow_remote=allow_remote) as stack:
            yield stack
        return
    provider = provider or spec.provider
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "logs").mkdir(exist_ok=True)
    t0 = time.monotonic()
    plan = build_plan(spec, run_dir, shared=shared, label=label)
    plan.write_files()
    launcher = make_launcher(provider, spec, run_dir)
    started: list[ServiceHandle] = []
    receiver: AlertReceiver | None = None
    owned = ownership.current()
    owned.add_stack(run_dir.name, stack_ports(plan), str(plan.endpoints["toxiproxy"]))
    try:
        if plan.webhook_port is not None:
            receiver = AlertReceiver(plan.webhook_port, journal=run_dir / "alerts.jsonl")
            receiver.start()
        toxiproxy_url = str(plan.endpoints["toxiproxy"])
        for tier in plan.tiers():
            handles = [_launch(launcher, d, run_dir) for d in tier]
            started += handles
            progress(f"[{time.monotonic() - t0:5.1f}s] starting: {', '.join(d.name for d in tier)}")
            _wait_ready(handles, progress, t0)
            _warm_up(handles)
            if any(d.role == "toxiproxy" for d in tier):
                _create_proxies(plan, toxiproxy_url)
        # The launcher's provider: `--provider` may differ from the spec's.
        endpoints = Endpoints.model_validate({**plan.endpoints, "provider": provider})
        if wait_for_scrapes and plan.prometheus is not None:
            wait_targets_up(endpoints.prometheus)
            progress(f"[{time.monotonic() - t0:5.1f}s] Prometheus sees every target up")
        endpoints.write(run_dir / "endpoints.json")
        stack = RunningStack(
            spec=spec,
            endpoints=endpoints,
            run_dir=run_dir,
            services={s.name: s for s in started},
            alerts=receiver,
            startup_seconds=time.monotonic() - t0,
            scrape_targets=plan.scrape_targets,
            prometheus=plan.prometheus,
        )
        yield stack
    finally:
        progress(f"stopping {len(started)} services")
        leftovers = _teardown(started, progress, receiver)
        launcher.close()
        owned.remove_stack(run_dir.name)
        if leftovers:
            progress("warning: still listening after teardown: " + ", ".join(leftovers))


def _launch(launcher: Launcher, definition: ServiceDef, run_dir: Path) -> ServiceHandle:
    return launcher.launch(definition, run_dir / "logs" / f"{definition.name}.log")
