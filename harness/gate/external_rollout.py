"""A rollout of a deployment the harness did not start, its inputs checked before anything runs.

Two ways, told apart by the stack specs:
- hooks: the candidate's spec (`provider: external`) names the deployment's entry, where both
  versions answer, and the hooks its own tooling moves traffic with (`external.rollout`); the
  harness calls them step by step, drives load at the entry and judges each step;
- compare: the baseline and the candidate each at a URL of its own (`--baseline-url` and
  `--candidate-url`, or two external specs without hooks), as an Argo Rollouts analysis has the
  stable and canary services; the harness moves nothing, splits its own load between the two and
  judges one step.
Both are canaries judged as the local one is; the profile stays the policy.
"""

from __future__ import annotations

import os
from pathlib import Path

from harness.errors import ConfigError, ConfigProblem, StackError
from harness.spec.external import ExternalSpec
from harness.spec.load import ClosedLoop, OpenLoop
from harness.spec.loader import parse_model
from harness.spec.rollout import RolloutSpec
from harness.spec.stack import StackSpec

# A stack argument: where it came from (a file or an option) and the spec, None when not given.
StackArg = tuple[str, StackSpec | None]


def url_stack(version: str, url: str, option: str) -> StackSpec:
    """The stack spec of a version known only by its URL: an external stack with the defaults
    (model from /v1/models, the reference gateway's headers), the key from HARNESS_API_KEY
    where that is set (none sent otherwise)."""
    key_env = "HARNESS_API_KEY" if os.environ.get("HARNESS_API_KEY") else None
    external = {"url": url, "api_key_env": key_env}
    return parse_model(
        StackSpec,
        {"kind": "stack", "name": version, "provider": "external", "external": external},
        option,
    )


def _refuse(source: str, field: str, why: str) -> ConfigError:
    return ConfigError(source, [ConfigProblem(field, why)])


def external_inputs(
    spec: RolloutSpec,
    profile: Path,
    baseline: StackArg,
    candidate: StackArg,
    provider: str | None,
    allow_remote: bool,
    strategy_src: str | None = None,
) -> tuple[StackSpec, StackSpec]:
    """The two versions of an external rollout (with hooks: the same deployment twice), or a
    ConfigError naming the file or option, the field and what was expected."""
    (base_src, base), (cand_src, cand) = baseline, candidate
    if cand is None or cand.external is None:
        raise _refuse(
            base_src,
            "provider",
            "the baseline is external, so the candidate must be too: the deployment's spec "
            "with its hooks (--candidate), or the candidate's own URL (--candidate-url)",
        )
    if provider not in (None, "external"):
        raise _refuse(
            "--provider", "provider", f"{provider}: an external deployment is not started here"
        )
    if spec.strategy == "scale_out":
        _check_scale_out(spec, profile, cand_src, cand.external, allow_remote)
        return cand, cand
    if spec.strategy != "canary":
        raise _refuse(
            strategy_src or str(profile),
            "strategy",
            f"{spec.strategy!r}: an external deployment's rollout is a canary (its own tooling "
            "moves the weights; a switch all at once is `steps: [1.0]`)",
        )
    if spec.switch.mode != "reload":
        raise _refuse(
            str(profile),
            "switch.mode",
            "restart restarts the harness's own split front; an external deployment's traffic "
            "is moved by its hooks",
        )
    ext = cand.external
    if ext.rollout is not None:
        if base is not None and base != cand:
            raise _refuse(
                base_src,
                "baseline",
                f"the deployment in {cand_src} serves both versions at its entry and moves "
                "traffic with its hooks: leave --baseline out (the running version is its "
                "baseline)",
            )
        _check_reachable(cand_src, ext, allow_remote)
        return cand, cand
    if base is None or base.external is None:
        raise _refuse(
            cand_src,
            "external.rollout",
            "expected the hooks that move this deployment's traffic (set_weight, rollback; "
            "docs/rollout.md), or the baseline's own URL too (--baseline-url, or an external "
            "--baseline) to compare the two",
        )
    if base.external.rollout is not None:
        raise _refuse(
            base_src,
            "external.rollout",
            "hooks are read from the candidate's spec (--candidate): the deployment a rollout "
            "moves",
        )
    if base.external.wire() != ext.wire():
        raise _refuse(
            cand_src,
            "external",
            f"the two versions are loaded with one set of names on the wire, but "
            f"{base_src} and {cand_src} differ in auth_header, auth_scheme or gateway: make "
            "them the same",
        )
    if spec.steps[0] >= 1:
        raise _refuse(
            str(profile),
            "steps",
            "comparing two URLs judges the first step: its share of the harness's load goes to "
            "the candidate, so it must be below 1 (for example [0.5, 1.0])",
        )
    if not isinstance(spec.load.load, OpenLoop | ClosedLoop):
        raise _refuse(
            str(profile),
            "load.load",
            "comparing two URLs splits an open or closed load between them, not a trace",
        )
    _check_reachable(base_src, base.external, allow_remote)
    _check_reachable(cand_src, ext, allow_remote)
    return base, cand


def _check_scale_out(
    spec: RolloutSpec, profile: Path, source: str, ext: ExternalSpec, allow_remote: bool
) -> None:
    """A scale-out the deployment makes itself: how to watch it, its signal's Prometheus, a
    numeric target (its autoscaler's), and a Kubernetes API on loopback unless allowed."""
    if ext.replicas is None:
        raise _refuse(
            source,
            "external.replicas",
            "a scale-out of an external deployment is watched, not made: expected how to watch "
            "its replicas (the signal, each replica's served count; a Kubernetes Deployment, "
            "or the replicas up in Prometheus; docs/rollout.md)",
        )
    if ext.prometheus is None:
        raise _refuse(
            source,
            "external.prometheus",
            "a scale-out reads the autoscaler's signal and each replica's served count from "
            "the deployment's Prometheus: expected its URL",
        )
    if isinstance(spec.autoscale.target_rps_per_replica, str):
        raise _refuse(
            str(profile),
            "autoscale.target_rps_per_replica",
            "an external deployment's target is its own autoscaler's: give it as a number "
            "(requests/s per replica)",
        )
    _check_reachable(source, ext, allow_remote)
    k8s = ext.replicas.kubernetes
    if k8s is not None:
        from harness.clients.kubernetes import DeploymentReader, kubeconfig_path

        if not kubeconfig_path(k8s).is_file():
            raise _refuse(
                source,
                "external.replicas.kubernetes.kubeconfig",
                f"{kubeconfig_path(k8s)}: no such file",
            )
        try:
            reader = DeploymentReader(k8s)
        except StackError as exc:
            raise _refuse(source, "external.replicas.kubernetes", str(exc)) from exc
        reader.close()
        from harness.stack.external import check_remote

        check_remote({"replicas.kubernetes": reader.host}, allow_remote, source)


def _check_reachable(source: str, ext: ExternalSpec, allow_remote: bool) -> None:
    """Secrets in the environment, every address (the hooks' too) on loopback unless allowed."""
    from harness.stack.external import check_env, check_remote

    check_env(ext, source)
    check_remote({**ext.urls(), **ext.hook_urls()}, allow_remote, source)
