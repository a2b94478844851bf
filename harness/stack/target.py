"""A load target from a running stack: its front door, key, primary model and Prometheus."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from harness.clients.models import Target
from harness.errors import ConfigError, ConfigProblem
from harness.stack.provider import Endpoints, RunningStack


def from_ready_file(path: Path) -> Target:
    """The front door (nginx) of a stack started by `harness up --ready-file`."""
    from pydantic import ValidationError

    try:
        ep = Endpoints.read(path)
    except FileNotFoundError:
        raise ConfigError(
            str(path), [ConfigProblem("", "ready file not found (is `harness up` running?)")]
        ) from None
    except (ValidationError, ValueError) as exc:
        raise ConfigError(
            str(path), [ConfigProblem("", f"not a ready file of `harness up`: {exc}")]
        ) from None
    return from_endpoints(ep, source=f"ready file {path}")


def from_endpoints(ep: Endpoints, source: str = "stack") -> Target:
    model = ep.served_models.get("primary") if ep.served_models else None
    servers = ep.model_pools.get("primary") or ep.model_servers
    return Target(
        tokenizer_url=servers[0].rstrip("/") if servers else None,
        url=ep.nginx.rstrip("/"),
        api_key=ep.api_key,
        model=model,
        prometheus=ep.prometheus or None,
        source=source,
    )


def from_stack(stack: RunningStack) -> Target:
    """The front door of a running stack, with the credentials its Prometheus asks for."""
    return replace(from_endpoints(stack.endpoints), prometheus_headers=stack.prometheus_headers())
