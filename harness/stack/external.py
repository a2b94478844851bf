"""provider `external`: attach to a deployment the harness did not start.

Nothing is started or stopped. Before the first request, every address the spec names is checked
(each unreachable one is named), its secrets must be in the environment, and any address off
loopback needs an explicit `--allow-remote`. Alerts are read from Alertmanager's API, since no
webhook of the harness is wired into someone else's Alertmanager.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from harness import wire
from harness.clients.alertmanager import AlertmanagerPoller
from harness.clients.http import http_get
from harness.data.progress import Progress
from harness.errors import ConfigError, ConfigProblem, StackError
from harness.spec.external import ExternalSpec
from harness.spec.stack import StackSpec
from harness.stack.provider import Endpoints, RunningStack


def is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name: it may resolve anywhere


def check_remote(urls: dict[str, str], allow_remote: bool, source: str) -> None:
    """Load and faults go to loopback unless the user says otherwise, in so many words."""
    remote = {name: url for name, url in urls.items() if not is_loopback(url)}
    if remote and not allow_remote:
        raise ConfigError(
            source,
            [
                ConfigProblem(
                    f"external.{name}" if name != "entry" else "external.url",
                    f"{url} is not a loopback address; pass --allow-remote to send load "
                    "and faults there",
                )
                for name, url in remote.items()
            ],
        )


def check_env(ext: ExternalSpec, source: str) -> None:
    missing = [n for n in ext.env_names() if not os.environ.get(n)]
    if missing:
        raise ConfigError(
            source,
            [
                ConfigProblem(
                    "external",
                    f"environment variable {n} is not set (the spec reads a secret from it)",
                )
                for n in missing
            ],
        )


def _probe(name: str, url: str, ext: ExternalSpec) -> str | None:
    """None when the address answers as what it should be; else why not."""
    checks = {
        "prometheus": ("/-/ready", ext.prometheus.headers() if ext.prometheus else {}),
        "alertmanager": ("/-/ready", ext.alertmanager.headers() if ext.alertmanager else {}),
        "toxiproxy": ("/version", {}),
    }
    path, headers = checks.get(name, ("/v1/models", {}))
    try:
        r = http_get(url + path, headers=headers, timeout=5.0)
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}"
    # The entry and gateways may want a key for /v1/models: any HTTP answer shows they are there.
    if name in checks and r.status_code != 200:
        return f"GET {path} answered {r.status_code}"
    return None


def _toxiproxy_listen(ext: ExternalSpec) -> dict[str, str]:
    """Each named proxy's listen address, from Toxiproxy's API; every named proxy must exist."""
    if ext.toxiproxy is None:
        return {}
    proxies = http_get(f"{ext.toxiproxy.url}/proxies", timeout=5.0).json()
    named = [p for names in ext.toxiproxy.proxies.values() for p in names]
    absent = [p for p in named if p not in proxies]
    if absent:
        have = ", ".join(sorted(proxies)) or "none"
        raise StackError(
            f"Toxiproxy at {ext.toxiproxy.url} has no proxy named "
            f"{', '.join(absent)}; it has {have}"
        )
    return {p: str(proxies[p]["listen"]) for p in named}


def _model(ext: ExternalSpec, key: str) -> str:
    if ext.model:
        return ext.model
    from harness.clients.models import Target, discover_model

    return discover_model(Target(url=ext.url, api_key=key))


@contextlib.contextmanager
def attach_external(
    spec: StackSpec,
    run_dir: Path,
    progress: Progress,
    *,
    allow_remote: bool = False,
    source: str = "stack spec",
) -> Iterator[RunningStack]:
    """Check the deployment is there and yield it as a running stack with no service handles;
    while it is attached, requests and answers use its names on the wire (harness.wire)."""
    ext = spec.external
    assert ext is not None
    with wire.using(ext.wire()):
        yield from _attached(spec, ext, run_dir, progress, allow_remote, source)


def _attached(
    spec: StackSpec,
    ext: ExternalSpec,
    run_dir: Path,
    progress: Progress,
    allow_remote: bool,
    source: str,
) -> Iterator[RunningStack]:
    t0 = time.monotonic()
    check_env(ext, source)
    urls = ext.urls()
    check_remote(urls, allow_remote, source)
    progress("external stack: " + ", ".join(f"{n} {u}" for n, u in urls.items()))
    down = [f"{n} {u} ({why})" for n, u in urls.items() if (why := _probe(n, u, ext))]
    if down:
        raise StackError("unreachable: " + "; ".join(down))
    key = os.environ.get(ext.api_key_env, "") if ext.api_key_env else ""
    run_dir.mkdir(parents=True, exist_ok=True)
    endpoints = Endpoints(
        nginx=ext.url,
        prometheus=ext.prometheus.url if ext.prometheus else "",
        alertmanager=ext.alertmanager.url if ext.alertmanager else "",
        toxiproxy=ext.toxiproxy.url if ext.toxiproxy else "",
        redis="",
        gateways=list(ext.gateways),
        model_servers=[],
        model_pools={},
        proxies=_toxiproxy_listen(ext),
        webhook="",
        exporters={},
        api_key=key,
        run_dir=str(run_dir),
        provider="external",
        served_models={"primary": _model(ext, key)},
    )
    endpoints.write(run_dir / "endpoints.json")
    alerts = None
    if ext.alertmanager is not None:
        alerts = AlertmanagerPoller(
            ext.alertmanager.url, ext.alertmanager.headers(), journal=run_dir / "alerts.jsonl"
        ).start()
    try:
        yield RunningStack(
            spec=spec,
            endpoints=endpoints,
            run_dir=run_dir,
            alerts=alerts,
            startup_seconds=time.monotonic() - t0,
        )
    finally:
        if alerts is not None:
            alerts.close()
