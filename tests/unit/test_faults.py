"""Fault kinds: their Toxiproxy attributes, the HTTP fault front's config, the simulated GPU
exporter, and where each kind's targets must be found."""

from __future__ import annotations

import subprocess
import threading
from http.server import ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from pydantic import TypeAdapter, ValidationError

from harness.faults.gpu_sim_exporter import _handler, _State, set_used_ratio
from harness.spec.experiment import (
    Fault,
    HttpError,
    StreamStall,
    ToxicFault,
    unknown_targets,
)
from harness.spec.stack import FaultsSpec, ModelPool, SimulatorServer, StackSpec
from harness.stack import http_front
from harness.stack.planner import build_plan
from harness.stack.ports import free_ports
from harness.tools import find_binary

FAULT = TypeAdapter(Fault)

# Toxiproxy 2.12's attribute names per toxic type (its README), for the fields the spec takes.
TOXIPROXY_ATTRIBUTES = {
    "latency": ({"latency_ms": 900, "jitter_ms": 50}, {"latency": 900, "jitter": 50}),
    "bandwidth": ({"rate_kbps": 4}, {"rate": 4}),
    "slicer": (
        {"average_size": 8, "size_variation": 2, "delay_us": 10},
        {"average_size": 8, "size_variation": 2, "delay": 10},
    ),
    "limit_data": ({"bytes": 700}, {"bytes": 700}),
    "reset_peer": ({"timeout_ms": 20}, {"timeout": 20}),
    "timeout": ({"timeout_ms": 0}, {"timeout": 0}),
    "slow_close": ({"delay_ms": 300}, {"delay": 300}),
}


@pytest.mark.parametrize("kind", sorted(TOXIPROXY_ATTRIBUTES))
def test_every_toxic_maps_its_fields_to_toxiproxy_attributes(kind: str) -> None:
    fields, attributes = TOXIPROXY_ATTRIBUTES[kind]
    fault = FAULT.validate_python(
        {"kind": kind, "targets": ["primary-0"], "stream": "upstream", "toxicity": 0.5, **fields}
    )
    assert isinstance(fault, ToxicFault)
    assert fault.attributes() == attributes
    assert (fault.stream, fault.toxicity) == ("upstream", 0.5)


@pytest.mark.parametrize(
    "bad",
    [
        {"kind": "latency", "targets": ["p"], "latency_ms": 0},
        {"kind": "latency", "targets": ["p"], "latency_ms": 10, "stream": "sideways"},
        {"kind": "bandwidth", "targets": ["p"], "rate_kbps": 1, "toxicity": 1.5},
        {"kind": "http_error", "targets": ["p"], "status": 404},
        {"kind": "http_error", "targets": ["p"], "share": 0},
        {"kind": "gpu_memory", "used_ratio": 1.2},
        {"kind": "limit_data", "targets": []},
    ],
)
def test_bad_fault_fields_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        FAULT.validate_python(bad)


def test_each_kind_finds_its_targets_where_it_acts() -> None:
    proxies, services = {"primary-0"}, {"primary-0", "httpfault-primary-1", "gpu-sim-exporter"}
    latency = FAULT.validate_python({"kind": "latency", "targets": ["primary-0"], "latency_ms": 5})
    assert unknown_targets(latency, proxies, services)[0] == []
    http = FAULT.validate_python({"kind": "http_error", "targets": ["primary-0", "primary-1"]})
    missing, what, known = unknown_targets(http, proxies, services)
    assert missing == ["primary-0"] and known == {"primary-1"} and "faults.http_front" in what
    gpu = FAULT.validate_python({"kind": "gpu_memory"})
    assert unknown_targets(gpu, proxies, set())[0] == ["gpu-sim-exporter"]


def test_faults_file_splits_requests_by_request_id() -> None:
    some = http_front.render_faults(
        HttpError(targets=("p",), status=429, share=0.25, retry_after_s=7)
    )
    assert 'split_clients "status${request_id}" $fault_status { 25% 429; * 0; }' in some
    assert "$fault_retry_after { default 7; }" in some
    every = http_front.render_faults(StreamStall(targets=("p",), after_bytes=300))
    assert "$fault_stall_rate { default 1; }" in every
    assert "$fault_stall_after { default 300; }" in every
    off = http_front.render_faults(None)
    assert "$fault_status { default 0; }" in off and "$fault_stall_rate { default 0; }" in off


@pytest.mark.parametrize(
    "fault",
    [
        None,
        HttpError(targets=("p",), status=503, share=0.5),
        StreamStall(targets=("p",), share=0.3),
    ],
)
def test_fault_front_config_is_valid_nginx(tmp_path: Path, fault: object) -> None:
    for sub in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (tmp_path / "nginx-tmp" / sub).mkdir(parents=True)
    (tmp_path / "logs").mkdir()
    faults = tmp_path / "faults.conf"
    faults.write_text(http_front.render_faults(fault))  # type: ignore[arg-type]
    conf = tmp_path / "front.conf"
    conf.write_text(
        http_front.render_front(
            run_dir=tmp_path, replica="primary-0", port=1, server_port=2, faults_path=faults
        )
    )
    argv = [
        str(find_binary("nginx")),
        "-t",
        "-p",
        str(tmp_path),
        "-c",
        str(conf),
        "-e",
        str(tmp_path / "logs" / "e.log"),
    ]
    r = subprocess.run(argv, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_planner_puts_the_fault_front_between_proxy_and_server(tmp_path: Path) -> None:
    sim = ModelPool(replicas=2, server=SimulatorServer())
    spec = StackSpec(
        primary=sim,
        fallback=ModelPool(server=SimulatorServer()),
        faults=FaultsSpec(http_front=("primary",)),
    )
    plan = build_plan(spec, tmp_path)
    by_name = {s.name: s for s in plan.services}
    assert {"httpfault-primary-0", "httpfault-primary-1"} <= set(by_name)
    assert "httpfault-fallback-0" not in by_name
    proxy = next(p for p in plan.proxies if p.name == "primary-0")
    assert proxy.upstream_port == by_name["httpfault-primary-0"].port
    conf = plan.files[tmp_path.resolve() / "config" / "httpfault-primary-0.conf"]
    assert f"server 127.0.0.1:{by_name['primary-0'].port};" in conf
    fallback = next(p for p in plan.proxies if p.name == "fallback-0")
    assert fallback.upstream_port == by_name["fallback-0"].port
    # Without faults: the stack is as before, no fronts, no GPU exporter.
    plain = build_plan(
        StackSpec(primary=sim, fallback=ModelPool(server=SimulatorServer())), tmp_path / "plain"
    )
    assert not [s for s in plain.services if s.name.startswith(("httpfault-", "gpu-sim"))]


def test_gpu_sim_exporter_serves_what_the_fault_sets() -> None:
    (port,) = free_ports(1)
    server = ThreadingHTTPServer(("127.0.0.1", port), _handler(_State(1000, 0.5)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{port}"

        def used() -> float:
            for line in httpx.get(f"{url}/metrics").text.splitlines():
                if line.startswith("llm_gpu_memory_used{"):
                    return float(line.rsplit(" ", 1)[1])
            raise AssertionError("no llm_gpu_memory_used")

        assert used() == 500
        set_used_ratio(url, 0.97)
        assert used() == 970
        assert httpx.post(f"{url}/state", json={"used_ratio": 2}).status_code == 400
        assert used() == 970
    finally:
        server.shutdown()
        server.server_close()


def test_incomplete_and_rate_limited_shares_are_judged_with_bounds() -> None:
    from harness.data.samples import Sample
    from harness.measure.summary import RunContext, WorkerAccount, summarize
    from harness.spec.slo import parse_slo
    from harness.verdict.slo import judge_share

    def sample(i: int, **kw: object) -> Sample:
        fields: dict[str, object] = {
            "worker": 0,
            "seq": i,
            "kind": "chat",
            "tenant": "default",
            "prompt_id": "p",
            "repeated": False,
            "intended_s": None,
            "sent_s": 1000.0 + i,
            "e2e_ms": 100.0,
            "ttft_ms": 20.0,
            "token_gaps_ms": [10.0],
            "output_tokens": 2,
            "output_chunks": 2,
            "status": 200,
            **kw,
        }
        return Sample(**fields)  # type: ignore[arg-type]

    samples = [sample(i) for i in range(10)]
    samples += [
        sample(10 + i, error=kind)
        for i, kind in enumerate(["incomplete", "stream_error", "timeout", "http"])
    ]
    samples += [sample(20 + i, error="http", status=429) for i in range(6)]
    ctx = RunContext(
        start_s=1000.0, duration_s=30.0, open_loop=False, workers=[WorkerAccount(0, 1000.0, 1030.0)]
    )
    summary = summarize(samples, ctx)
    assert summary.metric("incomplete_share") == pytest.approx(3 / 20)
    assert summary.metric("rate_limited_share") == pytest.approx(6 / 20)
    judged = judge_share(parse_slo("incomplete_share>=0.5"), summary, 0.05)
    assert judged is not None and judged.decision == "fail" and judged.n == 20
    judged = judge_share(parse_slo("rate_limited_share<=0.9"), summary, 0.05)
    assert judged is not None and judged.decision == "pass"
