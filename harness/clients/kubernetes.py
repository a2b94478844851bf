"""A Deployment's replicas read from the Kubernetes API (the official client: it speaks every
kubeconfig's authentication, exec plugins included). Read only: the harness never writes."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import StackError
from harness.spec.external import KubernetesDeployment

TIMEOUT_S = 5.0


@dataclass(frozen=True)
class DeploymentState:
    """One read: replicas asked for (the autoscaler's decision), ready, and in rotation (the
    Service's ready endpoints, as host:port)."""

    desired: int
    ready: int
    in_rotation: frozenset[str]


def kubeconfig_path(target: KubernetesDeployment) -> Path:
    if target.kubeconfig:
        return Path(target.kubeconfig).expanduser()
    env = os.environ.get("KUBECONFIG", "").split(os.pathsep)[0]
    return Path(env).expanduser() if env else Path.home() / ".kube" / "config"


class DeploymentReader:
    """Reads one Deployment and its Service's endpoints."""

    def __init__(self, target: KubernetesDeployment) -> None:
        # About a second to import: only where a Kubernetes API is watched.
        from kubernetes import client, config

        self.target = target
        path = kubeconfig_path(target)
        try:
            api = config.new_client_from_config(  # type: ignore[no-untyped-call]
                str(path), context=target.context
            )
        except Exception as exc:  # the client raises its own and OSError alike
            raise StackError(f"kubeconfig {path}: {exc}") from exc
        self.host: str = api.configuration.host
        self._apps = client.AppsV1Api(api)
        self._core = client.CoreV1Api(api)
        self._api = api

    def read(self) -> DeploymentState:
        t = self.target
        try:
            d: Any = self._apps.read_namespaced_deployment(
                t.deployment, t.namespace, _request_timeout=TIMEOUT_S
            )
            e: Any = self._core.read_namespaced_endpoints(
                t.service_name(), t.namespace, _request_timeout=TIMEOUT_S
            )
        except Exception as exc:  # ApiException, urllib3's errors: one message either way
            raise StackError(
                f"Kubernetes API {self.host}: reading {t.namespace}/{t.deployment}: {exc}"
            ) from exc
        ready = {
            f"{a.ip}:{s.ports[0].port}" if s.ports else a.ip
            for s in e.subsets or []
            for a in s.addresses or []
        }
        return DeploymentState(
            desired=int(d.spec.replicas or 0),
            ready=int(d.status.ready_replicas or 0),
            in_rotation=frozenset(ready),
        )

    def close(self) -> None:
        self._api.close()
