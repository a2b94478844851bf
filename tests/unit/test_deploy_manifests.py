"""The Kubernetes examples in deploy/ are valid resources (checked offline against the schemas
kubernetes-validate ships), the Argo Rollouts AnalysisTemplate by its field structure with its
embedded Job spec checked as a Job, and the specs and commands inside them are the harness's own."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

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
