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
from harness.spec.load import Seconds
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


# Placeholders a hook's command, URL, body and headers may hold, filled at each call.
HOOK_PLACEHOLDERS = {
    "weight": "the candidate's share in percent, 5, 50, 100, 0 for the rollback",
    "share": "the same as a fraction, 0.05",
    "action": "set_weight, promote or rollback",
}
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _known_placeholders(text: str) -> str:
    unknown = [n for n in _PLACEHOLDER.findall(text) if n not in HOOK_PLACEHOLDERS]
    if unknown:
        raise ValueError(
            f"unknown placeholder {{{unknown[0]}}}; expected "
            + "; ".join(f"{{{n}}}: {what}" for n, what in HOOK_PLACEHOLDERS.items())
        )
    return text


Templated = Annotated[str, AfterValidator(_known_placeholders)]


class Hook(Strict):
    """One traffic move made by the deployment's own tooling: a command (an argv list, run
    without a shell) or an HTTP call. Placeholders ({weight}, {share}, {action}) are filled in;
    a command also gets them as HARNESS_ROLLOUT_WEIGHT, _SHARE and _ACTION. It fails when it
    exits non-zero, answers 400 or above, or is not done within `timeout_s`."""

    command: list[Templated] | None = Field(None, min_length=1)
    url: Annotated[Templated, AfterValidator(_http_url)] | None = None
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "POST"
    body: Templated | None = None
    headers: dict[str, Templated] = Field(default_factory=dict)
    auth: Credentials | None = None
    timeout_s: Seconds = Field(30.0, gt=0, le=3600)

    @model_validator(mode="after")
    def _command_or_url(self) -> Hook:
        if (self.command is None) == (self.url is None):
            raise ValueError(
                "expected exactly one of `command` (an argv list, run without a shell) and "
                "`url` (an HTTP call)"
            )
        http_only = {"method", "body", "headers", "auth"} & self.model_fields_set
        if self.command is not None and http_only:
            raise ValueError(
                f"{', '.join(sorted(http_only))}: only an HTTP hook (`url`) has these, "
                "not a command"
            )
        return self


class Versions(Strict):
    """The version header's value on the answers of each version."""

    baseline: str = "baseline"
    candidate: str = "candidate"

    @model_validator(mode="after")
    def _distinct(self) -> Versions:
        if self.baseline == self.candidate:
            raise ValueError(f"baseline and candidate are both {self.baseline!r}")
        return self


class ExternalRollout(Strict):
    """How this deployment's traffic moves from its running version (the baseline) to the new
    one (the candidate): facts of the deployment, not the gate's policy. `harness rollout` calls
    `set_weight` at each step, `promote` once the candidate holds all traffic, and `rollback` on
    an abort, a failed move or an interruption; each answer at the entry names its version in
    `version_header`."""

    version_header: str = Wire.model_fields["version"].default
    versions: Versions = Versions()
    set_weight: Hook
    promote: Hook | None = None
    rollback: Hook

    def hooks(self) -> dict[str, Hook]:
        named = {"set_weight": self.set_weight, "promote": self.promote, "rollback": self.rollback}
        return {name: h for name, h in named.items() if h is not None}


class KubernetesDeployment(Strict):
    """The model servers' Deployment and its Service, read (never written) from the Kubernetes
    API: the Deployment's `spec.replicas` is the autoscaler's decision, its
    `status.readyReplicas` the replicas ready, the Service's ready endpoints those in rotation."""

    # Default: $KUBECONFIG, else ~/.kube/config (its current context unless `context` names one).
    kubeconfig: str | None = None
    context: str | None = None
    namespace: str = "default"
    deployment: str = Field(min_length=1)
    service: str | None = None  # default: the Deployment's name

    def service_name(self) -> str:
        return self.service or self.deployment


class ExternalReplicas(Strict):
    """How `harness rollout --strategy scale_out` watches a deployment it does not scale: the
    signal its autoscaler reads and each replica's arrival, from the deployment's Prometheus,
    and from the Kubernetes API when `kubernetes` is given."""

    # The pool's request rate, PromQL ({window}: the profile's autoscale.rate_window_s).
    signal: str = 'sum(rate(llm_upstream_requests_total{pool="primary"}[{window}s]))'
    # Each replica's served count by instance (host:port): a new replica serves once it moves.
    served: str = "sum by (instance) (vllm:request_success_total)"
    # The replicas up, by instance: what is in rotation where no Kubernetes API is given.
    up: str = 'up{job="model-primary"} == 1'
    kubernetes: KubernetesDeployment | None = None


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
    # How `harness rollout` moves this deployment's traffic (its hooks); null: it cannot.
    rollout: ExternalRollout | None = None
    # How `harness rollout --strategy scale_out` watches its replicas; null: it cannot.
    replicas: ExternalReplicas | None = None

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
        if self.rollout is not None:
            names["version"] = self.rollout.version_header
        return Wire.model_validate(names)

    def hook_urls(self) -> dict[str, str]:
        """The address of each HTTP hook, by `rollout.<hook>`."""
        hooks = self.rollout.hooks() if self.rollout else {}
        return {f"rollout.{name}": h.url for name, h in hooks.items() if h.url}

    def env_names(self) -> list[str]:
        names = [self.api_key_env] if self.api_key_env else []
        auths = [s.auth for s in (self.prometheus, self.alertmanager) if s is not None]
        auths += [h.auth for h in self.rollout.hooks().values()] if self.rollout else []
        for auth in auths:
            if auth is not None:
                names += auth.env_names()
        return names
