"""A rollout of an external deployment, its inputs checked before anything starts: the hooks in
its stack spec, the ways of naming the two versions, and every refusal naming file, field and
what was expected (exit 2, no traceback)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from harness.errors import ConfigError
from harness.gate.prepare import rollout_inputs
from harness.rollout.hooks import weight_text
from harness.spec.external import ExternalSpec

ENTRY = "http://127.0.0.1:8080"
HOOKS = {
    "set_weight": {"command": ["./move.sh", "{weight}"]},
    "rollback": {"url": "http://127.0.0.1:9000/rollback", "body": '{"weight": {weight}}'},
}


def _deployment(tmp_path: Path, **rollout: object) -> Path:
    hooks = {**HOOKS, **rollout}
    spec = {
        "kind": "stack",
        "name": "deployment",
        "provider": "external",
        "external": {"url": ENTRY, "api_key_env": None, "rollout": hooks},
    }
    path = tmp_path / "deployment.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def _profile(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "profile.yaml"
    path.write_text("kind: rollout\n" + text)
    return path


def _path(value: str | None) -> Path | None:
    return None if value is None else Path(value)


def _refused(tmp_path: Path, *args: str | Path) -> str:
    """`harness rollout ARGS`' inputs are refused: the error's text."""
    opts = {str(k): str(v) for k, v in zip(args[::2], args[1::2], strict=True)}
    with pytest.raises(ConfigError) as err:
        rollout_inputs(
            _path(opts.get("--profile")),
            _path(opts.get("--baseline")),
            _path(opts.get("--candidate")),
            opts.get("--strategy"),
            provider=opts.get("--provider"),
            baseline_url=opts.get("--baseline-url"),
            candidate_url=opts.get("--candidate-url"),
        )
    return str(err.value)


def test_the_command_exits_2_before_starting_anything(tmp_path: Path) -> None:
    path = _deployment(tmp_path, rollback={"command": ["x", "{wieght}"]})
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "harness", "rollout", "--candidate", str(path), "--out", str(out)]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "deployment.yaml" in r.stderr and "external.rollout.rollback.command" in r.stderr
    assert "unknown placeholder {wieght}" in r.stderr and "Traceback" not in r.stderr
    assert not out.exists()


def test_a_deployment_with_hooks_is_both_versions(tmp_path: Path) -> None:
    spec, base, cand = rollout_inputs(None, None, _deployment(tmp_path), None)
    assert base == cand and cand.external is not None and cand.external.rollout is not None
    r = cand.external.rollout
    assert r.promote is None and r.version_header == "X-Served-Version"
    assert r.versions.baseline == "baseline" and r.versions.candidate == "candidate"
    assert cand.external.wire().version == "X-Served-Version"
    assert spec.strategy == "canary"


def test_the_version_header_is_the_deployments(tmp_path: Path) -> None:
    path = _deployment(tmp_path, version_header="X-Canary", versions={"baseline": "v1"})
    _, _, cand = rollout_inputs(None, None, path, None)
    assert cand.external is not None and cand.external.wire().version == "X-Canary"


def test_two_urls_are_two_external_versions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HARNESS_API_KEY", raising=False)
    profile = _profile(tmp_path, "steps: [0.5, 1.0]\n")
    _, base, cand = rollout_inputs(
        profile, None, None, None, baseline_url=ENTRY, candidate_url="http://127.0.0.1:8081"
    )
    assert base.external is not None and cand.external is not None
    assert (base.external.url, cand.external.url) == (ENTRY, "http://127.0.0.1:8081")
    assert base.external.api_key_env is None  # no key in the environment: none is sent
    monkeypatch.setenv("HARNESS_API_KEY", "sk-x")
    _, base, _ = rollout_inputs(
        profile, None, None, None, baseline_url=ENTRY, candidate_url="http://127.0.0.1:8081"
    )
    assert base.external is not None and base.external.api_key_env == "HARNESS_API_KEY"


@pytest.mark.parametrize(
    ("rollout", "field", "expected"),
    [
        ({"set_weight": {"command": ["x"], "url": ENTRY}}, "rollout.set_weight", "exactly one of"),
        ({"set_weight": {}}, "rollout.set_weight", "exactly one of"),
        ({"set_weight": {"command": []}}, "rollout.set_weight.command", "at least 1"),
        ({"rollback": {"command": ["x", "{wieght}"]}}, "rollback.command[1]", "{weight}"),
        ({"rollback": {"url": ENTRY, "body": "{weigth}"}}, "rollback.body", "{share}"),
        ({"rollback": {"command": ["x"], "body": "{}"}}, "rollout.rollback", "only an HTTP hook"),
        ({"rollback": {"url": "ftp://x"}}, "rollout.rollback.url", "http(s) URL"),
        ({"rollback": {"url": ENTRY, "method": "FETCH"}}, "rollback.method", "'POST'"),
        ({"rollback": {"command": ["x"], "timeout_s": 0}}, "rollback.timeout_s", "greater than"),
        ({"set_weight": {"command": ["x"], "cmd": ["y"]}}, "set_weight.cmd", "unknown field"),
        ({"rollback": None}, "rollout.rollback", "valid dictionary"),
        ({"versions": {"baseline": "v", "candidate": "v"}}, "rollout.versions", "both 'v'"),
    ],
)
def test_bad_hooks_name_file_field_and_what_was_expected(
    tmp_path: Path, rollout: dict[str, object], field: str, expected: str
) -> None:
    out = _refused(tmp_path, "--candidate", _deployment(tmp_path, **rollout))
    assert "deployment.yaml" in out and field in out and expected in out, out


def test_a_rollback_hook_is_required(tmp_path: Path) -> None:
    path = _deployment(tmp_path)
    spec = yaml.safe_load(path.read_text())
    del spec["external"]["rollout"]["rollback"]
    path.write_text(yaml.safe_dump(spec))
    out = _refused(tmp_path, "--candidate", path)
    assert "external.rollout.rollback" in out and "Field required" in out


def test_hooks_off_loopback_need_allow_remote(tmp_path: Path) -> None:
    path = _deployment(tmp_path, rollback={"url": "http://192.0.2.1/rollback"})
    out = _refused(tmp_path, "--candidate", path)
    assert "external.rollout.rollback" in out and "--allow-remote" in out
    _, _, cand = rollout_inputs(None, None, path, None, allow_remote=True)
    assert cand.external is not None and cand.external.hook_urls() == {
        "rollout.rollback": "http://192.0.2.1/rollback"
    }


def test_a_hooks_secret_must_be_in_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TOOLING_TOKEN", raising=False)
    auth = {"kind": "bearer", "token_env": "TOOLING_TOKEN"}
    path = _deployment(tmp_path, rollback={"url": ENTRY, "auth": auth})
    assert "TOOLING_TOKEN is not set" in _refused(tmp_path, "--candidate", path)


@pytest.mark.parametrize(
    ("args", "source", "expected"),
    [
        (["--strategy", "blue_green"], "--strategy", "is a canary"),
        (["--profile", "mode"], "profile.yaml", "restart restarts the harness's own"),
        (["--baseline", "other"], "other.yaml", "leave --baseline out"),
        (["--provider", "local"], "--provider", "not started here"),
    ],
)
def test_an_external_rollout_refuses_what_it_cannot_do(
    tmp_path: Path, args: list[str], source: str, expected: str
) -> None:
    if args[-1] == "mode":
        args = ["--profile", str(_profile(tmp_path, "switch: {mode: restart}\n"))]
    if args[-1] == "other":
        other = tmp_path / "other.yaml"
        other.write_text("kind: stack\nname: other\n")
        args = ["--baseline", str(other)]
    out = _refused(tmp_path, "--candidate", _deployment(tmp_path), *args)
    assert source in out and expected in out, out


@pytest.mark.parametrize(
    ("args", "source", "expected"),
    [
        (["--candidate-url", ENTRY], "--candidate-url", "expected the hooks"),
        (["--baseline-url", ENTRY, "--candidate-url", "x"], "--candidate-url", "http(s) URL"),
        (
            ["--baseline-url", "http://192.0.2.1", "--candidate-url", ENTRY],
            "--baseline-url",
            "--allow-remote",
        ),
        (
            ["--baseline-url", ENTRY, "--candidate-url", ENTRY, "--profile", "one"],
            "profile.yaml",
            "below 1",
        ),
        (["--baseline-url", ENTRY], "--baseline-url", "the candidate must be too"),
        ([], "--baseline", "the running version's stack spec"),
    ],
)
def test_two_urls_are_checked_before_anything_starts(
    tmp_path: Path, args: list[str], source: str, expected: str
) -> None:
    if args[-1:] == ["one"]:
        args = [*args[:-1], str(_profile(tmp_path, "steps: [1.0]\n"))]
    out = _refused(tmp_path, *args)
    assert source in out and expected in out, out


def test_a_hook_gets_the_weight_in_percent() -> None:
    assert [weight_text(s) for s in (0.0, 0.05, 0.125, 0.5, 1.0)] == ["0", "5", "12.5", "50", "100"]


def test_the_spec_lists_every_hook() -> None:
    ext = ExternalSpec.model_validate(
        {"url": ENTRY, "rollout": {**HOOKS, "promote": {"command": ["./promote.sh"]}}}
    )
    assert ext.rollout is not None and list(ext.rollout.hooks()) == [
        "set_weight",
        "promote",
        "rollback",
    ]


def test_two_external_specs_are_compared_with_one_wire(tmp_path: Path) -> None:
    def spec(name: str, **external: object) -> Path:
        body = {"url": ENTRY, "api_key_env": None, **external}
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump({"kind": "stack", "provider": "external", "external": body}))
        return path

    profile = _profile(tmp_path, "steps: [0.5, 1.0]\n")
    stable, canary = spec("stable"), spec("canary", url="http://127.0.0.1:8081")
    _, base, cand = rollout_inputs(profile, stable, canary, None)
    assert base.external is not None and cand.external is not None
    other = spec("other", auth_header="X-API-Key", auth_scheme="")
    out = _refused(tmp_path, "--profile", profile, "--baseline", stable, "--candidate", other)
    assert "other.yaml" in out and "one set of names on the wire" in out


def _scaling(tmp_path: Path, **external: object) -> Path:
    """A deployment that scales itself: its entry, its Prometheus, how to watch its replicas."""
    ext = {
        "url": ENTRY,
        "api_key_env": None,
        "prometheus": {"url": "http://127.0.0.1:9090"},
        "replicas": {},
        **external,
    }
    path = tmp_path / "scaling.yaml"
    path.write_text(yaml.safe_dump({"kind": "stack", "provider": "external", "external": ext}))
    return path


def _kubeconfig(tmp_path: Path, server: str) -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": server}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    return path


def test_an_external_scale_out_is_watched_with_what_its_spec_says(tmp_path: Path) -> None:
    kube = {"kubeconfig": str(_kubeconfig(tmp_path, "http://127.0.0.1:6443")), "deployment": "d"}
    path = _scaling(tmp_path, replicas={"kubernetes": kube})
    spec, base, cand = rollout_inputs(None, path, None, "scale_out")
    assert spec.strategy == "scale_out" and base == cand and base.external is not None


@pytest.mark.parametrize(
    ("external", "field", "expected"),
    [
        ({"replicas": None}, "external.replicas", "watched, not made"),
        ({"prometheus": None}, "external.prometheus", "the deployment's Prometheus"),
        (
            {
                "replicas": {
                    "kubernetes": {"kubeconfig": "/nonexistent/kubeconfig", "deployment": "d"}
                }
            },
            "external.replicas.kubernetes.kubeconfig",
            "no such file",
        ),
        ({"replicas": {"kubernetes": "remote"}}, "external.replicas.kubernetes", "--allow-remote"),
    ],
)
def test_an_external_scale_out_refuses_what_it_cannot_watch(
    tmp_path: Path, external: dict[str, object], field: str, expected: str
) -> None:
    if external.get("replicas") == {"kubernetes": "remote"}:
        kubeconfig = str(_kubeconfig(tmp_path, "https://192.0.2.7:6443"))
        external = {"replicas": {"kubernetes": {"kubeconfig": kubeconfig, "deployment": "d"}}}
    out = _refused(
        tmp_path, "--baseline", _scaling(tmp_path, **external), "--strategy", "scale_out"
    )
    assert "scaling.yaml" in out and field in out and expected in out, out


def test_an_external_scale_out_needs_its_autoscalers_target(tmp_path: Path) -> None:
    profile = _profile(
        tmp_path, "strategy: scale_out\nautoscale: {target_rps_per_replica: from_capacity}\n"
    )
    out = _refused(tmp_path, "--baseline", _scaling(tmp_path), "--profile", profile)
    assert "autoscale.target_rps_per_replica" in out and "its own autoscaler's" in out, out
