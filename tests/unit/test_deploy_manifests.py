"""The Kubernetes examples in deploy/ are valid resources (checked offline against the schemas
kubernetes-validate ships), the Argo Rollouts AnalysisTemplate by its field structure with its
embedded Job spec checked as a Job, and the specs and commands inside them are the harness's own."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import yaml
from typer.testing import CliRunner

from harness.commands.main import app
from harness.spec.gate import GateSpec
from harness.spec.stack import StackSpec

DEPLOY = Path(__file__).parents[2] / "deploy"
K8S_VERSION = kubernetes_validate.latest_version()


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _validate(doc: dict[str, Any]) -> None:
    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def _gate_options() -> set[str]:
    out = CliRunner().invoke(app, ["gate", "--help"], terminal_width=200).output
    return set(re.findall(r"--[a-z][a-z-]+", out))


def _check_command(words: list[str]) -> None:
    assert words[:2] == ["harness", "gate"], words
    unknown = {w for w in words if w.startswith("--")} - _gate_options()
    assert not unknown, f"not options of `harness gate`: {unknown}"


def test_the_gate_job_is_a_valid_kubernetes_job() -> None:
    docs = _docs(DEPLOY / "kubernetes" / "gate-job.yaml")
    assert [d["kind"] for d in docs] == ["ConfigMap", "Job"]
    for doc in docs:
        _validate(doc)
    config = docs[0]["data"]
    StackSpec.model_validate(yaml.safe_load(config["stack.yaml"]))
    GateSpec.model_validate(yaml.safe_load(config["profile.yaml"]))
    (container,) = docs[1]["spec"]["template"]["spec"]["containers"]
    _check_command(container["command"])


def test_a_broken_job_is_refused_by_the_schema() -> None:
    job = _docs(DEPLOY / "kubernetes" / "gate-job.yaml")[1]
    job["spec"]["template"]["spec"]["restartPolicy"] = ["Never"]  # a list where a string goes
    with pytest.raises(kubernetes_validate.ValidationError):
        _validate(job)
    job = _docs(DEPLOY / "kubernetes" / "gate-job.yaml")[1]
    job["spec"]["backofLimit"] = 0  # a misspelt field: strict validation refuses it
    with pytest.raises(kubernetes_validate.ValidationError):
        _validate(job)


def test_the_analysis_template_runs_a_valid_job(tmp_path: Path) -> None:
    (tmpl,) = _docs(DEPLOY / "argo" / "analysis-template.yaml")
    assert tmpl["apiVersion"] == "argoproj.io/v1alpha1" and tmpl["kind"] == "AnalysisTemplate"
    assert set(tmpl) == {"apiVersion", "kind", "metadata", "spec"}
    spec = tmpl["spec"]
    declared = {a["name"] for a in spec["args"]}
    (metric,) = spec["metrics"]
    assert set(metric["provider"]) == {"job"}
    job = metric["provider"]["job"]
    # The embedded Job spec, checked as the Job Argo will create from it.
    _validate(
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "llm-gate"},
            "spec": job["spec"],
        }
    )
    used = set(re.findall(r"\{\{args\.([a-z0-9-]+)\}\}", yaml.safe_dump(tmpl)))
    assert used and used <= declared, f"arguments used but not declared: {used - declared}"
    (container,) = job["spec"]["template"]["spec"]["containers"]
    script = container["command"][-1]
    (line,) = [ln for ln in script.splitlines() if ln.strip().startswith("exec harness")]
    _check_command(line.split()[1:])
    # The stack spec the script writes for the canary's URL is a valid external spec.
    (printf,) = [ln for ln in script.splitlines() if ln.strip().startswith("printf")]
    printf = printf.replace("/tmp/stack.yaml", str(tmp_path / "stack.yaml"))
    env = {"CANARY_URL": "http://canary.staging.svc:8080", "PATH": "/usr/bin:/bin"}
    subprocess.run(["sh", "-c", printf], check=True, env=env)
    stack = StackSpec.model_validate(yaml.safe_load((tmp_path / "stack.yaml").read_text()))
    assert stack.external is not None and stack.external.url == env["CANARY_URL"]


# The canary analysis: a ConfigMap (the profile), the AnalysisTemplate, a Rollout using it at each
# analysis step, and the two Services the Rollout's URLs name.
CANARY = DEPLOY / "argo" / "canary-analysis.yaml"


def _rollout_options() -> set[str]:
    out = CliRunner().invoke(app, ["rollout", "--help"], terminal_width=200).output
    return set(re.findall(r"--[a-z][a-z-]+", out))


def _by_kind(docs: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    kinds: dict[str, list[dict[str, Any]]] = {}
    for doc in docs:
        kinds.setdefault(doc["kind"], []).append(doc)
    return kinds


def _canary_problems(docs: list[dict[str, Any]]) -> list[str]:
    """What would make Argo's analysis steps miss their template or the harness miss a version:
    each step names a template of this file and gives exactly the arguments it declares; each URL
    names a Service of the file (in the Rollout's namespace, on a port it serves)."""
    kinds = _by_kind(docs)
    templates = {t["metadata"]["name"]: t for t in kinds["AnalysisTemplate"]}
    services = {s["metadata"]["name"]: s for s in kinds["Service"]}
    problems = []
    for rollout in kinds["Rollout"]:
        canary = rollout["spec"]["strategy"]["canary"]
        namespace = rollout["metadata"]["namespace"]
        for role in ("stableService", "canaryService"):
            if canary[role] not in services:
                problems.append(f"{role} {canary[role]} is not a Service of the file")
        for i, step in enumerate(canary["steps"]):
            analysis = step.get("analysis")
            if analysis is None:
                continue
            given = {a["name"]: a["value"] for a in analysis["args"]}
            for ref in analysis["templates"]:
                template = templates.get(ref["templateName"])
                if template is None:
                    problems.append(f"step {i}: no AnalysisTemplate {ref['templateName']}")
                    continue
                declared = {a["name"] for a in template["spec"]["args"]}
                if set(given) != declared:
                    problems.append(f"step {i}: arguments {sorted(given)}, declared {declared}")
            for name, url in given.items():
                u = urlsplit(url)
                host = (u.hostname or "").split(".")
                service = services.get(host[0])
                ports = {p["port"] for p in service["spec"]["ports"]} if service else set()
                if service is None or host[1:2] != [namespace] or u.port not in ports:
                    problems.append(f"step {i}: {name} {url} is not a Service port of the file")
    return problems


def test_the_canary_analysis_is_valid_and_consistent(tmp_path: Path) -> None:
    docs = _docs(CANARY)
    kinds = _by_kind(docs)
    assert sorted(kinds) == ["AnalysisTemplate", "ConfigMap", "Rollout", "Service"]
    for doc in (*kinds["ConfigMap"], *kinds["Service"]):
        _validate(doc)
    (tmpl,) = kinds["AnalysisTemplate"]
    assert tmpl["apiVersion"] == "argoproj.io/v1alpha1" and set(tmpl) == {
        "apiVersion",
        "kind",
        "metadata",
        "spec",
    }
    (metric,) = tmpl["spec"]["metrics"]
    assert set(metric["provider"]) == {"job"}
    job = metric["provider"]["job"]
    metadata = {"name": "llm-canary-analysis", **job["metadata"]}
    _validate({"apiVersion": "batch/v1", "kind": "Job", "metadata": metadata, "spec": job["spec"]})
    (rollout,) = kinds["Rollout"]
    # The Rollout's pods, checked as the Deployment they would be without Argo.
    spec = {k: rollout["spec"][k] for k in ("replicas", "selector", "template")}
    _validate(
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"}, "spec": spec}
    )
    assert [s for s in rollout["spec"]["strategy"]["canary"]["steps"] if "setWeight" in s]
    assert _canary_problems(docs) == []


def test_the_canary_analysis_runs_a_command_the_harness_accepts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from harness.gate.prepare import rollout_inputs

    docs = _docs(CANARY)
    (config,) = _by_kind(docs)["ConfigMap"]
    (tmpl,) = _by_kind(docs)["AnalysisTemplate"]
    (container,) = tmpl["spec"]["metrics"][0]["provider"]["job"]["spec"]["template"]["spec"][
        "containers"
    ]
    words = container["command"]
    assert words[:2] == ["harness", "rollout"]
    unknown = {w for w in words if w.startswith("--")} - _rollout_options()
    assert not unknown, f"not options of `harness rollout`: {unknown}"
    # The mounted profile and the arguments as Argo fills them in: the harness takes them.
    mount = container["volumeMounts"][0]["mountPath"]
    for name, text in config["data"].items():
        (tmp_path / name).write_text(text)
    args = dict(zip(words[2::2], words[3::2], strict=False))
    urls = {"{{args.stable-url}}": "http://stable.staging.svc:8080"}
    urls["{{args.canary-url}}"] = "http://canary.staging.svc:8080"
    monkeypatch.setenv("HARNESS_API_KEY", "sk-example")
    profile = Path(args["--profile"].replace(mount, str(tmp_path)))
    spec, base, cand = rollout_inputs(
        profile,
        None,
        None,
        None,
        baseline_url=urls[args["--baseline-url"]],
        candidate_url=urls[args["--candidate-url"]],
        allow_remote="--allow-remote" in words,
    )
    assert base.external is not None and cand.external is not None
    assert cand.external.url == "http://canary.staging.svc:8080"
    assert spec.steps[0] < 1 and base.external.api_key_env == "HARNESS_API_KEY"
    assert container["env"][0]["name"] == "HARNESS_API_KEY"


def test_a_canary_step_naming_a_wrong_argument_or_service_is_caught() -> None:
    docs = _docs(CANARY)
    step = _by_kind(docs)["Rollout"][0]["spec"]["strategy"]["canary"]["steps"][1]
    step["analysis"]["args"][0]["name"] = "stable-uri"
    assert any("arguments" in p for p in _canary_problems(docs))
    docs = _docs(CANARY)
    step = _by_kind(docs)["Rollout"][0]["spec"]["strategy"]["canary"]["steps"][3]
    step["analysis"]["args"][1]["value"] = "http://llm-gateway-canary.staging.svc:9090"
    assert any("not a Service port" in p for p in _canary_problems(docs))
    docs = _docs(CANARY)
    step = _by_kind(docs)["Rollout"][0]["spec"]["strategy"]["canary"]["steps"][3]
    step["analysis"]["templates"][0]["templateName"] = "llm-gate"
    assert any("no AnalysisTemplate" in p for p in _canary_problems(docs))
