"""`harness load merge DIR...`: one report from run folders written separately (several load
machines, or parts of one schedule run apart), with exact percentiles over the union of their
samples.

Each DIR is a run folder (`report.json` or `load-config.json`, `samples/`) or a bare sample
folder with a `load-config.json` beside it. Folders holding the workers of one schedule (same
spec and seed, distinct worker indices; `spec.processes` the total) are summarized as that one
run. Folders of separate runs are summarized together: their offered arrivals and workers add up.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from harness.data.samples import SAMPLE_GLOB, Sample, read_samples
from harness.errors import ConfigError, ConfigProblem
from harness.load.report import LoadReport, RunJudge
from harness.load.runner import read_accounts, run_context
from harness.load.workload_view import build_view, opted_in
from harness.measure.summary import WorkerAccount, summarize
from harness.provenance import git_sha, host_info, iso_at
from harness.spec.load import LoadSpec

SOURCE = "harness load merge (command line)"


@dataclass
class Part:
    folder: Path
    spec: LoadSpec
    model: str
    target: dict[str, object]
    samples: list[Sample]
    accounts: list[WorkerAccount]
    context_tokens: int | None = None  # the model's context the run's requests were fitted to


def _sample_dir(folder: Path) -> Path:
    return folder / "samples" if (folder / "samples").is_dir() else folder


def _read_part(folder: Path) -> Part:
    if not folder.is_dir():
        raise ConfigError(SOURCE, [ConfigProblem(str(folder), "not a folder")])
    samples_at = _sample_dir(folder)
    report, config = folder / "report.json", None
    for candidate in (folder / "load-config.json", samples_at.parent / "load-config.json"):
        if candidate.is_file():
            config = candidate
            break
    try:
        if report.is_file():
            r = LoadReport.read(report)
            spec, model, target = LoadSpec.model_validate(r.config), r.model, r.target
            context = r.limits.context_tokens if r.limits is not None else None
        elif config is not None:
            d = json.loads(config.read_text())
            spec, model = LoadSpec.model_validate(d["spec"]), str(d["model"])
            target = {"url": d.get("target_url")}
            context = d.get("context_tokens")
        else:
            raise ConfigError(
                SOURCE,
                [ConfigProblem(str(folder), "expected report.json or load-config.json in it")],
            )
    except (ValueError, KeyError) as exc:
        raise ConfigError(
            SOURCE, [ConfigProblem(str(folder), f"unreadable run: {exc}".splitlines()[0])]
        ) from None
    if not any(samples_at.glob(SAMPLE_GLOB)):
        raise ConfigError(SOURCE, [ConfigProblem(str(folder), f"no {SAMPLE_GLOB} in {samples_at}")])
    samples, accounts = read_samples(samples_at), read_accounts(samples_at)
    return Part(folder, spec, model, target, samples, accounts, context)


def _one_schedule(parts: list[Part]) -> bool:
    """Workers of one schedule: the same spec (seed included), each worker index once."""
    specs = {p.spec.model_dump_json() for p in parts}
    workers = [a.worker for p in parts for a in p.accounts]
    return len(specs) == 1 and len(workers) == len(set(workers))


def merge_runs(
    folders: list[Path], out: Path, judge: RunJudge, default_checks: bool = True
) -> LoadReport:
    """Summarize and judge (the SLOs, and the default checks unless turned off) the union of
    the folders' samples into `out/report.json`."""
    parts = [_read_part(f.resolve()) for f in folders]
    samples = sorted((s for p in parts for s in p.samples), key=lambda s: s.sent_s)
    accounts = [a for p in parts for a in p.accounts]
    first = parts[0].spec
    if _one_schedule(parts):
        spec = first
        ctx = run_context(spec, samples, accounts, [], context_tokens=parts[0].context_tokens)
        how = f"one schedule over {len(accounts)} of {spec.processes} workers"
    else:
        spec = first.model_copy(update={"processes": sum(p.spec.processes for p in parts)})
        ctx = run_context(spec, samples, accounts, [], context_tokens=parts[0].context_tokens)
        each = [
            run_context(p.spec, p.samples, p.accounts, [], context_tokens=p.context_tokens)
            for p in parts
        ]
        end = max(c.start_s + c.duration_s for c in each)
        ctx = dataclasses.replace(ctx, duration_s=end - ctx.start_s)
        if all(c.expected_requests is not None for c in each):
            total = sum(c.expected_requests or 0.0 for c in each)
            ctx = dataclasses.replace(ctx, expected_requests=total)
        how = f"{len(parts)} separate runs, their arrivals and workers added up"
    ctx.warnings = [f"merged from {len(parts)} folder(s): {how}"]
    ctx.default_checks = default_checks
    summary = summarize(samples, ctx)
    checks, outcome = judge(samples, summary, ctx)
    report = LoadReport(
        git_sha=git_sha(),
        name=spec.name,
        started_at=iso_at(summary.window.start_s),
        host=host_info(),
        config=spec.model_dump(mode="json"),
        target=parts[0].target,
        model=parts[0].model,
        outcome=outcome,
        summary=summary,
        checks=checks,
        workload=build_view(samples) if opted_in(spec) else None,
        samples_dir=", ".join(str(_sample_dir(p.folder)) for p in parts),
        locust_log="",
    )
    out.mkdir(parents=True, exist_ok=True)
    report.write(out / "report.json")
    return report
