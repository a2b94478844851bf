"""A stack the harness did not start (`provider: external`): where it is, how to authenticate,
and which parts of the gateway contract it keeps.

Secrets are never written here: a spec names the environment variables that hold them, and the
harness reads them at run time (and redacts them in every report).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BeforeValidator, Field, model_validator

from harness.spec.base import Strict
from harness.wire import ERRORS, METRICS, ErrorAnswer, Wire


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


_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


def _metric_name(name: str | None) -> str | None:
    if name is not None and not _METRIC_NAME.fullmatch(name):
        raise ValueError("expected a Prometheus metric name, or null for absent")
    return name


def _status(code: int) -> int:
    if not 400 <= code <= 599:
        raise ValueError("expected an HTTP error status (400-599)")
    return code


class ErrorAnswerSpec(Strict):
    """`401`, `[400, 413]` or `{status: 400, code: prompt_injection_detected}`."""

    status: list[Annotated[int, AfterValidator(_status)]] = Field(min_length=1)
    code: str | None = None  # the error body's `code`; checked when given

    @model_validator(mode="before")
    @classmethod
    def _short(cls, value: object) -> object:
        if isinstance(value, int):
            return {"status": [value]}
        if isinstance(value, list):
            return {"status": value}
        if isinstance(value, dict) and isinstance(value.get("status"), int):
            return {**value, "status": [value["status"]]}
        return value


def _items(what: str, value_is: str, catalogue: Mapping[str, object]) -> Callable[[object], object]:
    """`true` (or omitted): every item as the reference gateway has it; `false`: every item
    absent; else a mapping whose keys are items of `catalogue`."""

    def expand(value: object) -> object:
        if value is True:
            return {}
        if value is False:
            return dict.fromkeys(catalogue)
        if not isinstance(value, dict):
            raise ValueError(
                f"expected true (as the reference gateway), false (all absent) or "
                f"a mapping of {what} to {value_is}"
            )
        unknown = [k for k in value if k not in catalogue]
        if unknown:
            raise ValueError(
                f"unknown {what} {', '.join(map(repr, unknown))}; expected one of "
                f"{', '.join(catalogue)}"
            )
        return value

    return expand


class GatewayContract(Strict):
    """The gateway contract (README, "The gateway contract") under this deployment's names. Each
    item is the deployment's name for it (the reference gateway's by default), or null: absent,
    and the checks that rest on it are skipped with that reason, never passed."""

    served_by: str | None = "X-Served-By"  # primary | fallback | cache | degraded
    cache: str | None = "X-Cache"  # hit | miss | bypass
    request_id: str | None = "X-Request-Id"  # on every answer, echoing the client's
    # Each metric the checks read (harness.wire.METRICS) -> its name here, or null.
    metrics: Annotated[
        dict[str, Annotated[str | None, AfterValidator(_metric_name)]],
        BeforeValidator(_items("metric", "its name here or null", METRICS)),
    ] = Field(default_factory=dict)
    # Each error the probes provoke (harness.wire.ERRORS) -> how it is answered here, or null.
    errors: Annotated[
        dict[str, ErrorAnswerSpec | None],
        BeforeValidator(_items("error", "its status here or null", ERRORS)),
    ] = Field(default_factory=dict)

    def wire_names(self) -> dict[str, object]:
        """The contract as `harness.wire.Wire` fields (absent headers keep the reference names,
        which are then simply not there)."""
        names: dict[str, object] = {
            item: name
            for item in ("served_by", "cache", "request_id")
            if (name := getattr(self, item)) is not None
        }
        names["metrics"] = dict(self.metrics)
        names["errors"] = {
            item: None if a is None else ErrorAnswer(status=tuple(a.status), code=a.code)
            for item, a in self.errors.items()
        }
        return names


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
        """The names requests and answers use on the wire."""
        names: dict[str, object] = {
            "auth_header": self.auth_header,
            "auth_scheme": self.auth_scheme,
        }
        if self.gateway is not None:
            names |= self.gateway.wire_names()
        return Wire.model_validate(names)

    def env_names(self) -> list[str]:
        names = [self.api_key_env] if self.api_key_env else []
        for service in (self.prometheus, self.alertmanager):
            if service is not None and service.auth is not None:
                names += service.auth.env_names()
        return names
