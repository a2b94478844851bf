"""A stack the harness did not start (`provider: external`): where it is, how to authenticate,
and which parts of the gateway contract it keeps.

Secrets are never written here: a spec names the environment variables that hold them, and the
harness reads them at run time (and redacts them in every report).
"""

from __future__ import annotations

import os
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, model_validator

from harness.spec.base import Strict
from harness.wire import Wire


def _http_url(value: str) -> str:
    u = urlsplit(value)
    if u.scheme not in ("http", "https") or not u.hostname:
        raise ValueError(f"expected an http(s) URL such as http://127.0.0.1:8080, got {value!r}")
    return value.rstrip("/")


HttpUrl = Annotated[str, AfterValidator(_http_url)]


class Credentials(Strict):
    """Bearer token or basic auth for Prometheus / Alertmanager, read from the environment."""

    kind: Literal["bearer", "basic"]
    token_env: str | None = None  # bearer
    username_env: str | None = None  # basic
    password_env: str | None = None  # basic

    @model_validator(mode="after")
    def _complete(self) -> Credentials:
        if self.kind == "bearer" and not self.token_env:
            raise ValueError("kind 'bearer' needs token_env (the variable holding the token)")
        if self.kind == "basic" and not (self.username_env and self.password_env):
            raise ValueError("kind 'basic' needs username_env and password_env")
        return self

    def env_names(self) -> list[str]:
        return [n for n in (self.token_env, self.username_env, self.password_env) if n]

    def headers(self) -> dict[str, str]:
        """The Authorization header, from the environment (checked before the run starts)."""
        import base64

        if self.kind == "bearer":
            assert self.token_env
            return {"Authorization": f"Bearer {os.environ[self.token_env]}"}
        assert self.username_env and self.password_env
        pair = f"{os.environ[self.username_env]}:{os.environ[self.password_env]}"
        return {"Authorization": "Basic " + base64.b64encode(pair.encode()).decode()}


class ExternalService(Strict):
    url: HttpUrl
    auth: Credentials | None = None

    def headers(self) -> dict[str, str]:
        return self.auth.headers() if self.auth else {}


class ExternalToxiproxy(Strict):
    """A Toxiproxy the deployment already routes through: its admin URL and, per pool, the names
    of its proxies (network faults act on these)."""

    url: HttpUrl
    proxies: dict[Literal["primary", "fallback", "redis"], list[str]] = Field(default_factory=dict)


class GatewayContract(Strict):
    """The gateway contract (README, "The gateway contract") under this deployment's names. A
    header item is the header's name (the reference gateway's by default), or null: absent, and
    the checks that rest on it are skipped with that reason, never passed."""

    served_by: str | None = "X-Served-By"  # primary | fallback | cache | degraded
    cache: str | None = "X-Cache"  # hit | miss | bypass
    request_id: str | None = "X-Request-Id"  # on every answer, echoing the client's
    # PRACTICES.md's metric names on each replica's /metrics (cost, injection, breaker state).
    metrics: bool = True
    # 401 without a key, 403 for an unknown one, 400/405/404/413 for bad requests, 429 with
    # Retry-After over the rate limit.
    errors: bool = True


class ExternalSpec(Strict):
    # The entry: a load balancer or a gateway; requests go to {url}/v1/...
    url: HttpUrl
    model: str | None = None  # default: the first model at {url}/v1/models
    # The variable holding the API key the gate sends with; never stored in a report.
    api_key_env: str | None = "HARNESS_API_KEY"
    auth_header: str = "Authorization"
    auth_scheme: str = "Bearer"  # "" sends the bare key (`auth_header: X-API-Key`)
    gateways: list[HttpUrl] = Field(default_factory=list)  # each replica's own URL, when reachable
    prometheus: ExternalService | None = None
    alertmanager: ExternalService | None = None
    toxiproxy: ExternalToxiproxy | None = None
    # The gateway contract; null: no gateway at all (a bare model server).
    gateway: GatewayContract | None = GatewayContract()

    def urls(self) -> dict[str, str]:
        """Every address the harness will talk to, by what it is."""
        out = {"entry": self.url}
        out |= {f"gateway-{i}": u for i, u in enumerate(self.gateways)}
        for name in ("prometheus", "alertmanager", "toxiproxy"):
            service = getattr(self, name)
            if service is not None:
                out[name] = service.url
        return out

    def wire(self) -> Wire:
        """The names requests and answers use on the wire (absent headers keep the reference
        names, which are then simply not there)."""
        names = {"auth_header": self.auth_header, "auth_scheme": self.auth_scheme}
        if self.gateway is not None:
            for item in ("served_by", "cache", "request_id"):
                if (name := getattr(self.gateway, item)) is not None:
                    names[item] = name
        return Wire(**names)

    def env_names(self) -> list[str]:
        names = [self.api_key_env] if self.api_key_env else []
        for service in (self.prometheus, self.alertmanager):
            if service is not None and service.auth is not None:
                names += service.auth.env_names()
        return names
