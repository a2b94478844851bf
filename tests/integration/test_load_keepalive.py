"""Pooled keep-alive connections the server has closed must not become errors of the server.

Against a real nginx that closes connections idle for longer than a few hundred milliseconds
(llama-server does the same): a request that finds its pooled connection closed is sent again,
once, on a NEW connection, and counted once. Several pooled connections go stale together, so a
retry that took the next pooled one failed as well (2 of 10 requests lost in a default run).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import gevent
import pytest
from load_fixtures import *  # noqa: F403 (fixtures)
from load_fixtures import run_harness

from harness.load.client import LLMClient
from harness.load.workload import WorkloadGenerator
from harness.spec.load import Workload

pytestmark = [pytest.mark.integration, pytest.mark.load]

KEEPALIVE_MS = 200


def test_requests_on_connections_the_server_closed_are_resent_on_new_ones(
    idle_closing_nginx: Callable[[int], str],
) -> None:
    url = idle_closing_nginx(KEEPALIVE_MS)
    client = LLMClient(url, max_idle=8)
    gen = WorkloadGenerator(Workload(), "m", "sk-x", seed=1, worker=0)
    # Four at once: four connections, all pooled afterwards.
    first = [gevent.spawn(client.execute, gen.next()) for _ in range(4)]
    gevent.joinall(first, raise_error=True)
    assert all(g.value.ok for g in first), [g.value for g in first]
    assert len(client._idle) == 4
    gevent.sleep(KEEPALIVE_MS / 1000 * 3)  # nginx closes all four meanwhile
    later = [client.execute(gen.next()) for _ in range(4)]
    assert [s.error for s in later] == [None] * 4, [(s.error, s.error_detail) for s in later]
    assert sum(s.retries for s in later) == 1  # once on a new connection, then it is reused
    assert all(s.status == 200 and s.output_chunks == 2 for s in later)
    client.close()


def test_open_loop_run_against_an_idle_closing_server_has_no_errors(
    idle_closing_nginx: Callable[[int], str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HARNESS_RUNS_DIR", str(tmp_path / "runs"))
    url = idle_closing_nginx(KEEPALIVE_MS)
    out = tmp_path / "out.json"
    # Bursts of 10 at once, 1.25 s apart: ten pooled connections go stale between bursts.
    r = run_harness(
        "load",
        "--target",
        url,
        "--model",
        "m",
        "--rate",
        "8",
        "--arrival",
        "burst",
        "--max-send-lag-ms",
        "250",
        "--duration",
        "4s",
        "--json",
        out,
        "--run-dir",
        tmp_path / "run",
    )
    assert r.returncode == 0, r.stdout + r.stderr
    s = json.loads(out.read_text())["summary"]
    assert s["counts"]["errors"] == 0, s["counts"]
    assert s["counts"]["total"] == 40
    # Every burst after the first found its ten connections closed.
    assert s["generator"]["retries"] >= 10, "no pooled connection went stale: nothing was tested"
