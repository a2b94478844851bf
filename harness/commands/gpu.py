"""`harness gpu-check` (also `make gpu-check`, or `python -m harness.commands.gpu` where only the
machine's own Python is there): what this machine lacks to run a GPU stack spec, each missing part
with its fix, and, where a GPU and NVML are present, GPUMemoryHigh firing on real GPU memory
through a real Prometheus (docs/gpu.md).

Exit codes: 0 ready (every part present, and the alert fired and resolved as it should); 1 the
alert check ran and failed; 2 a part is missing (the list says which and how to fix it), or the
check could not run.
"""

# No `from __future__ import annotations`: typer reads the command's annotations when it is
# registered, and typer itself is imported only then (after the package check of `main`).
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

if TYPE_CHECKING:
    import typer

    from harness.probes.gpu_host import Host, Preflight
    from harness.spec.stack import PrometheusSpec
    from harness.verdict.checks import CheckResult

Echo = Callable[[str], None]

# What this command imports, by import name and package name: a GPU machine's own Python may lack
# some, and is told which before anything else is imported.
PACKAGES = {
    "typer": "typer",
    "pydantic": "pydantic",
    "yaml": "PyYAML",
    "httpx": "httpx",
    "tenacity": "tenacity",
    "prometheus_client": "prometheus-client",
}
_STATE = {True: "ok", False: "MISSING", None: "UNCHECKED"}


def missing_packages() -> list[str]:
    return [pkg for module, pkg in PACKAGES.items() if importlib.util.find_spec(module) is None]


def _print_preflight(result: "Preflight", echo: Echo) -> None:
    width = max(len(p.name) for p in result.parts)
    for part in result.parts:
        echo(f"  {_STATE[part.seen.ok]:<9} {part.name:<{width}}  {part.seen.detail}")
        if not part.present:
            echo(f"  {'':<9} {'':<{width}}  fix: {part.fix}")


def run_gpu_check(
    stack: Path | None, preflight_only: bool, echo: Echo, host: "Host | None" = None
) -> int:
    """The preflight (probing this machine unless `host` answers instead), then the alert check
    where it can run; returns the exit code."""
    from harness.exit_codes import EXIT_CANNOT_RUN, EXIT_FAIL, EXIT_OK
    from harness.paths import STACK_DIR, model_hub_home, new_run_dir
    from harness.probes.gpu_host import NVML_CHECK, VLLM_STACK, MachineHost, preflight
    from harness.spec.files import load_stack_spec
    from harness.spec.images import resolve_image_map

    path = stack or STACK_DIR / "vllm-stack.yaml"
    spec = load_stack_spec(path)
    if host is None:
        machine = MachineHost(model_hub_home())
        try:
            result = preflight(spec, machine, resolve_image_map(spec.images))
        finally:
            machine.close()
    else:
        result = preflight(spec, host, resolve_image_map(spec.images))
    echo(f"GPU preflight for {path} ({spec.name}):")
    _print_preflight(result, echo)
    check: CheckResult | None = None
    blocking = result.blocking(NVML_CHECK)
    if preflight_only:
        echo(f"{NVML_CHECK}: not run (--preflight-only)")
    elif blocking:
        echo(f"{NVML_CHECK}: not run (missing: {', '.join(blocking)})")
    else:
        check = _alert_check(spec.prometheus, new_run_dir("gpu-check"), echo)
    stack_blocking = result.blocking(VLLM_STACK)
    if stack_blocking:
        echo(f"{VLLM_STACK}: cannot start here (missing: {', '.join(stack_blocking)})")
    else:
        echo(
            f"{VLLM_STACK}: every part present (`harness gate --profile reports/profiles/gpu.yaml`)"
        )
    missing = result.missing()
    if check is not None and check.outcome != "pass":
        code = EXIT_FAIL
    else:
        code = EXIT_CANNOT_RUN if missing else EXIT_OK
    verdict = f"{len(missing)} of {len(result.parts)} parts missing" if missing else "ready"
    echo(f"gpu-check: {verdict} (exit {code})")
    return code


def _alert_check(prometheus: "PrometheusSpec", run_dir: Path, echo: Echo) -> "CheckResult":
    from harness.chaos.gpu_memory import check_gpu_memory_alert
    from harness.probes.gpu_host import NVML_CHECK
    from harness.verdict.gpu_memory import judge_gpu_memory_alert

    echo(f"{NVML_CHECK} (run folder {run_dir}):")
    evidence = check_gpu_memory_alert(prometheus, run_dir, lambda line: echo(f"  {line}"))
    check = judge_gpu_memory_alert(evidence)
    (run_dir / "gpu-check.json").write_text(check.model_dump_json(indent=2), encoding="utf-8")
    mark = {"pass": "PASS"}.get(check.outcome, "FAIL")
    echo(f"  {mark}  {check.name}: {'; '.join(check.reasons)}")
    return check


def register(app: "typer.Typer") -> None:
    import typer

    @app.command("gpu-check")
    def gpu_check(
        stack: Annotated[
            Path | None,
            typer.Option("--stack", help="GPU stack spec. Default: stack/vllm-stack.yaml."),
        ] = None,
        preflight_only: Annotated[
            bool,
            typer.Option("--preflight-only", help="Say what is missing; allocate nothing."),
        ] = False,
    ) -> None:
        """What this machine lacks for the GPU stack, and GPUMemoryHigh on real GPU memory.
        Exit 0 ready, 1 the alert check failed, 2 something is missing (listed with fixes)."""
        raise typer.Exit(run_gpu_check(stack, preflight_only, typer.echo))


def main() -> None:
    """`python -m harness.commands.gpu`: the same command without the rest of the harness."""
    lacking = missing_packages()
    if lacking:
        print("gpu-check needs these Python packages, missing here: " + ", ".join(lacking))
        print(f"  fix: pip install {' '.join(lacking)} (docs/gpu.md: carrying them as wheels)")
        sys.exit(2)
    import typer

    from harness.errors import HarnessError

    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    register(app)
    try:
        rc = app(standalone_mode=False)
    except HarnessError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except Exception as exc:  # click's usage errors: shown as click shows them
        show = getattr(exc, "show", None)
        if not callable(show):
            raise
        show()
        sys.exit(2)
    sys.exit(rc if isinstance(rc, int) else 0)


if __name__ == "__main__":
    main()
