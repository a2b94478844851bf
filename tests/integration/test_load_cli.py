"""`harness load` and `harness capacity` against the simulator, through the typer commands.

The commands are registered on a fresh Typer app here (harness/cli.py maps errors to exit codes).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from load_fixtures import *  # noqa: F403 (fixtures)
from load_fixtures import SimFactory
from typer.testing import CliRunner

from harness.errors import ConfigError
from harness.load.cli import register

pytestmark = [pytest.mark.integration, pytest.mark.load]


def app() -> typer.Typer:
    a = typer.Typer()
    register(a)
    return a


def invoke(*args: str) -> tuple[int, str, BaseException | None]:
    r = CliRunner().invoke(app(), list(args))
    return r.exit_code, r.output, r.exception


def test_load_command_writes_a_self_describing_report(
    simulator: SimFactory, tmp_path: Path
) -> None:
    sim = simulator(ttft_ms=20, itl_ms=5)
    out = tmp_path / "out.json"
    code, output, exc = invoke(
        "load", "--target", sim.url, "--api-key", "sk-test-123456", "--users", "2",
        "--duration", "3s", "--max-tokens", "8", "--slo", "ttft_p95_ms<=5000",
        "--slo", "ttft_ms<=2000", "--json", str(out), "--run-dir", str(tmp_path / "run"),
    )  # fmt: skip
    assert code == 0, (output, exc)
    assert "time to first token" in output and "PASSED" in output
    report = json.loads(out.read_text())
    assert report["schema_version"] == 1 and report["kind"] == "load"
    assert report["harness_version"] and report["created_at"] and report["host"]["cpus"] >= 1
    assert report["config"]["load"] == {
        "kind": "closed",
        "users": 2,
        "spawn_rate": None,
        "think_time_s": 0.0,
    }
    assert report["target"]["api_key"] == "sk-tes..."  # redacted
    assert report["model"] == "sim-model"  # discovered at /v1/models
    s = report["summary"]
    for dist in ("ttft_ms", "itl_ms", "tpot_ms", "e2e_ms"):
        assert set(s["latency"][dist]) >= {"count", "p50", "p90", "p95", "p99"}
    assert s["throughput"]["requests_per_second"] > 0
    assert s["throughput"]["output_tokens_per_second"] > 0
    assert s["goodput"]["slos"] == ["ttft_ms<=2000"] and s["goodput"]["share"] == 1.0
    assert s["slo_checks"][0]["passed"] is True
    assert len(s["timeseries"]) >= 3 and "ttft_p95_ms" in s["timeseries"][0]
    assert (tmp_path / "run" / "report.json").is_file()


def test_load_command_open_loop_with_two_worker_processes(
    simulator: SimFactory, tmp_path: Path
) -> None:
    sim = simulator(ttft_ms=20, itl_ms=5)
    out = tmp_path / "out.json"
    code, output, exc = invoke(
        "load", "--target", sim.url, "--rate", "10", "--arrival", "constant", "--processes", "2",
        "--duration", "3s", "--max-tokens", "4", "--json", str(out),
        "--run-dir", str(tmp_path / "run"),
    )  # fmt: skip
    assert code == 0, (output, exc)
    s = json.loads(out.read_text())["summary"]
    g = s["generator"]
    assert g["mode"] == "open" and g["workers_done"] == 2
    assert g["sent"] == 30 and g["offered_rate_rps"] == pytest.approx(10.0)
    assert s["validity"]["valid"] is True
    workers = {p.name.split("-")[1] for p in (tmp_path / "run" / "samples").glob("samples-*.jsonl")}
    assert workers == {"000", "001"}


def test_failed_slo_exits_1(simulator: SimFactory, tmp_path: Path) -> None:
    sim = simulator(ttft_ms=50, itl_ms=5)
    code, output, _ = invoke(
        "load", "--target", sim.url, "--users", "1", "--duration", "2s", "--max-tokens", "4",
        "--slo", "ttft_p50_ms<=1", "--run-dir", str(tmp_path / "run"),
    )  # fmt: skip
    assert code == 1, output
    assert "SLO FAIL" in output and "ttft_p50_ms" in output


@pytest.mark.parametrize(
    ("args", "where"),
    [
        (["--rate", "5", "--users", "3"], "--rate/--users"),
        (["--scenario", "no-such-thing"], "--scenario"),
        (["--rate", "-2"], "load.rate_rps"),
        (["--slo", "ttft_p95<=5"], "slos"),
        (["--duration", "soon"], "duration_s"),
        (["--target", "localhost:8000"], "--target"),
    ],
)
def test_bad_options_raise_config_error(args: list[str], where: str, tmp_path: Path) -> None:
    base = ["load", "--target", "http://127.0.0.1:9", "--run-dir", str(tmp_path)]
    _, _, exc = invoke(*base, *args)
    assert isinstance(exc, ConfigError), exc
    assert any(where in p.location for p in exc.problems), exc


def test_capacity_finds_the_knee_of_a_two_slot_server(
    simulator: SimFactory, tmp_path: Path
) -> None:
    # 2 slots x ~0.19 s per request: about 10 req/s before requests queue.
    sim = simulator(100, 10, 2)
    out = tmp_path / "cap.json"
    code, output, exc = invoke(
        "capacity", "--target", sim.url, "--slo", "ttft_p95_ms<=400", "--start-rate", "2",
        "--max-steps", "5", "--step-duration", "3s", "--max-tokens", "10",
        "--json", str(out), "--run-dir", str(tmp_path / "run"),
    )  # fmt: skip
    assert code == 0, (output, exc)
    result = json.loads(out.read_text())
    print("\n" + output)
    assert result["kind"] == "capacity" and len(result["steps"]) <= 5
    assert result["bounded_by"] in ("slo", "steps")
    assert 4 <= result["capacity_rps"] < 16
    rates = [s["rate_rps"] for s in result["steps"]]
    assert rates[:3] == [2, 4, 8]  # doubling first
    assert any(s["outcome"] == "failed" for s in result["steps"])
