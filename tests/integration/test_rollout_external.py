"""`harness rollout` of a deployment it did not start. The deployment is the test's own: two
llm-d-inference-sim processes ("stable" and "canary") behind an nginx that splits traffic by the
weights in an included file and names the version in X-Served-Version. Its rollout tooling is a
script of the test's (tests/fixtures/rollout/external/move_weights.py: rewrite the weights, reload
nginx) and, for one hook, an HTTP endpoint the test runs; the harness only calls them, drives
load at the entry and judges. Without hooks, two URLs are compared as an Argo Rollouts analysis
would (the weights moved elsewhere)."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from load_fixtures import free_port, run_harness, stop, wait_http
from nginx_support import nginx_argv
from process_support import interrupt_after

from harness.rollout.hooks import HookFailed, call_hook
from harness.spec.external import Hook
from harness.stack.process import pid_alive
from harness.tools import find_binary

pytestmark = [pytest.mark.integration, pytest.mark.slow]

FIXTURES = Path(__file__).parents[1] / "fixtures" / "rollout"
MOVE = FIXTURES / "external" / "move_weights.py"
PROFILE = FIXTURES / "external-canary.yaml"
MODEL = "sim-model"


@contextlib.contextmanager
def _sim(d: Path, ttft_ms: int) -> Iterator[str]:
    port = free_port()
    log = d / f"sim-{port}.log"
    argv = [
        str(find_binary("llm-d-inference-sim")),
        *("--model", MODEL, "--port", str(port), "--mode", "random", "--seed", "1"),
        *("--time-to-first-token", f"{ttft_ms}ms", "--inter-token-latency", "5ms"),
        *("--max-num-seqs", "64", "--max-model-len", "4096"),
        # its KV-event publisher defaults to one fixed port; keep the sims apart
        *("--zmq-endpoint", f"tcp://127.0.0.1:{free_port()}"),
    ]
    with log.open("wb") as f:
        proc = subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/health", proc, log)
        yield url
    finally:
        stop(proc)


@pytest.fixture(scope="module")
def sims(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """The versions: stable, an identical canary, and a canary 20% slower to its first token
    (120 ms against 100 ms at the server: a first token long enough that a busy runner's
    scheduling noise is a small share of it; the simulator's fixed first token keeps the bounds
    tight, +49.1% .. +49.6% for a 50% slower one)."""
    d = tmp_path_factory.mktemp("sims")
    with _sim(d, 100) as stable, _sim(d, 100) as same, _sim(d, 120) as slow:
        yield {"stable": stable, "same": same, "slow": slow}


@contextlib.contextmanager
def _deployment(d: Path, stable: str, canary: str) -> Iterator[str]:
    """The test's nginx split front over the two versions, all traffic on stable; its URL."""
    port = free_port()
    front = d / "front"
    server = """location / {
            add_header X-Served-Version $version always;
            proxy_pass http://$version;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
        }"""
    upstreams = (
        f"include {front}/weights.conf;\n"
        f"    upstream stable {{ server {stable.removeprefix('http://')}; keepalive 32; }}\n"
        f"    upstream canary {{ server {canary.removeprefix('http://')}; keepalive 32; }}"
    )
    argv = nginx_argv(front, port, server, upstreams, connections=1024)
    (front / "weights.conf").write_text("map $request_id $version { default stable; }\n")
    log = front / "nginx.log"
    with log.open("wb") as f:
        proc = subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/v1/models", proc, log)
        yield url
    finally:
        stop(proc)


def _move(front: Path, action: str, *extra: str) -> list[str]:
    return [sys.executable, str(MOVE), str(front), action, "{weight}", *extra]


def _spec(tmp_path: Path, url: str, **hooks: Any) -> Path:
    """The deployment's stack spec: its entry, how it names its versions, and its hooks (the
    move_weights script unless the test names others)."""
    front = tmp_path / "front"
    rollout = {
        "versions": {"baseline": "stable", "candidate": "canary"},
        "set_weight": {"command": _move(front, "set_weight")},
        "promote": {"command": _move(front, "promote")},
        "rollback": {"command": _move(front, "rollback")},
        **hooks,
    }
    external = {"url": url, "model": MODEL, "api_key_env": None, "gateway": None}
    spec = {"kind": "stack", "name": "deployment", "provider": "external", "external": external}
    spec["external"]["rollout"] = rollout  # type: ignore[index]
    path = tmp_path / "deployment.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def _rollout(tmp_path: Path, *args: str | Path) -> tuple[subprocess.CompletedProcess[str], Any]:
    out = tmp_path / "out"
    r = run_harness("rollout", "--profile", PROFILE, "--out", out, *args, timeout_s=180)
    report = json.loads((out / "report.json").read_text()) if (out / "report.json").exists() else {}
    return r, report


def _calls(tmp_path: Path) -> list[str]:
    return (tmp_path / "front" / "calls.log").read_text().splitlines()


def _check(report: dict[str, Any], prefix: str) -> dict[str, Any]:
    return next(c for c in report["checks"] if c["name"].startswith(prefix))


class _Tooling(ThreadingHTTPServer):
    """An HTTP endpoint of the deployment's tooling: POST /rollback moves the weights back (by
    the same script), POST /locked answers 409 as a tool holding a lock would. Each call's path
    and body are kept."""

    def __init__(self, front: Path) -> None:
        self.front, self.calls = front, list[tuple[str, str]]()
        super().__init__(("127.0.0.1", 0), _ToolingHandler)
        self.url = f"http://127.0.0.1:{self.server_address[1]}"


class _ToolingHandler(BaseHTTPRequestHandler):
    server: _Tooling

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        self.server.calls.append((self.path, body))
        if self.path == "/rollback":
            weight = str(json.loads(body)["weight"])
            argv = [sys.executable, str(MOVE), str(self.server.front), "rollback", weight]
            done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
            status, text = (200, "rolled back") if done.returncode == 0 else (500, done.stdout)
        else:
            status, text = 409, "weights locked by another rollout"
        self.send_response(status)
        self.send_header("Content-Length", str(len(text)))
        self.end_headers()
        self.wfile.write(text.encode())

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def _tooling(front: Path) -> Iterator[_Tooling]:
    server = _Tooling(front)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def test_an_identical_candidate_is_promoted_through_the_hooks(
    tmp_path: Path, sims: dict[str, str]
) -> None:
    with _deployment(tmp_path, sims["stable"], sims["same"]) as url:
        r, report = _rollout(tmp_path, "--candidate", _spec(tmp_path, url))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    # The tooling was asked for each step's weight, then to promote: nothing else.
    assert _calls(tmp_path) == ["set_weight 50", "set_weight 100", "promote 100"]
    journal = report["rollout"]
    assert journal["stopped"] == "promoted to 100%" and journal["final_share"] == 1.0
    decided = [lk for lk in journal["looks"] if lk["decision"] != "hold"]
    assert [(lk["share"], lk["decision"]) for lk in decided] == [(0.5, "promote")]
    # The deployment's own names ("stable", "canary") were read as baseline and candidate.
    assert decided[0]["n_baseline"] > 0 and decided[0]["n_candidate"] > 0
    moves = [c for c in report["checks"] if "->" in c["name"]]
    assert [c["name"].split(":")[0] for c in moves] == ["step to 50%", "step to 100%", "promote"]
    for move in moves:
        assert move["outcome"] == "pass", move
    assert moves[-1]["measured"]["after_wrong_version"] == 0


def test_a_slower_candidate_is_aborted_and_the_rollback_hook_called(
    tmp_path: Path, sims: dict[str, str]
) -> None:
    with (
        _deployment(tmp_path, sims["stable"], sims["slow"]) as url,
        _tooling(tmp_path / "front") as tooling,
    ):
        rollback = {"url": f"{tooling.url}/rollback", "body": '{"weight": {weight}}'}
        r, report = _rollout(tmp_path, "--candidate", _spec(tmp_path, url, rollback=rollback))
    assert r.returncode == 1, r.stdout[-3000:] + r.stderr[-2000:]
    canary = _check(report, "canary:")
    assert canary["outcome"] == "fail" and canary["reasons"][0].startswith("aborted at 50%")
    assert "ttft_p50" in " ".join(canary["reasons"])
    # Rolled back through the HTTP hook, which moved the weights back with the same script.
    assert tooling.calls == [("/rollback", '{"weight": 0}')]
    assert _calls(tmp_path) == ["set_weight 50", "rollback 0"]
    rollback_check = _check(report, "rollback:")
    assert rollback_check["outcome"] == "pass", rollback_check
    assert rollback_check["measured"]["after_wrong_version"] == 0
    assert report["rollout"]["final_share"] == 0.0


def test_a_failing_hook_fails_its_move_and_the_rollout_rolls_back(
    tmp_path: Path, sims: dict[str, str]
) -> None:
    front = tmp_path / "front"
    set_weight = {"command": _move(front, "set_weight", "--fail-at", "50")}
    with _deployment(tmp_path, sims["stable"], sims["same"]) as url:
        r, report = _rollout(tmp_path, "--candidate", _spec(tmp_path, url, set_weight=set_weight))
    assert r.returncode == 1, r.stdout[-3000:] + r.stderr[-2000:]
    move = _check(report, "step to 50%")
    assert move["outcome"] == "fail"
    # The hook's exit status and its own words are the reason.
    assert "set_weight hook" in move["reasons"][0] and "exited 3" in move["reasons"][0]
    assert "change freeze" in move["reasons"][0]
    canary = _check(report, "canary:")
    assert canary["outcome"] == "fail" and "the move to 50% failed" in canary["reasons"][0]
    assert _calls(tmp_path) == ["set_weight 50", "rollback 0"]
    assert _check(report, "rollback:")["outcome"] == "pass"


def test_an_interrupted_rollout_calls_the_rollback_hook_and_says_where(
    tmp_path: Path, sims: dict[str, str]
) -> None:
    out = tmp_path / "out"
    with _deployment(tmp_path, sims["stable"], sims["same"]) as url:
        spec = _spec(tmp_path, url)
        argv = [sys.executable, "-m", "harness", "rollout", "--candidate", str(spec)]
        argv += ["--profile", str(PROFILE), "--out", str(out)]
        code, output, pids = interrupt_after(argv, "step to 50%", 1.0)
    assert code == 130, output
    assert _calls(tmp_path) == ["set_weight 50", "rollback 0"]
    journal = json.loads((out / "report.json").read_text())["rollout"]
    assert journal["interrupted"] and journal["stopped"].startswith("interrupted at 50%")
    assert journal["moves"][-1]["share_to"] == 0.0 and journal["moves"][-1]["mode"] == "hook"
    assert not [p for p in pids if pid_alive(p)]


@pytest.mark.parametrize(("candidate", "code"), [("same", 0), ("slow", 1)])
def test_two_urls_are_compared_for_one_step_moving_nothing(
    tmp_path: Path, sims: dict[str, str], candidate: str, code: int
) -> None:
    """What the Argo Rollouts analysis runs at a step: the stable and canary services' URLs."""
    r, report = _rollout(
        tmp_path, "--baseline-url", sims["stable"], "--candidate-url", sims[candidate]
    )
    assert r.returncode == code, r.stdout[-3000:] + r.stderr[-2000:]
    journal = report["rollout"]
    assert journal["moves"] == []
    looks = journal["looks"]
    assert looks[-1]["decision"] == ("promote" if code == 0 else "abort")
    assert looks[-1]["n_baseline"] > 0 and looks[-1]["n_candidate"] > 0
    if code:
        assert "ttft_p50" in " ".join(_check(report, "canary:")["reasons"])


def test_a_hook_that_fails_says_how() -> None:
    """Each way a hook fails is named: its exit, its time, an HTTP error status, no answer."""
    with pytest.raises(HookFailed, match=r"exited 4: no such rollout"):
        call_hook("set_weight", Hook(command=["sh", "-c", "echo no such rollout; exit 4"]), 0.5)
    slow = Hook(command=["sleep", "30"], timeout_s=0.3)
    with pytest.raises(HookFailed, match=r"did not finish within 0.3s"):
        call_hook("promote", slow, 1.0)
    assert call_hook("set_weight", Hook(command=["echo", "{weight} {share}"]), 0.05) == "5 0.05"
    with (
        _tooling(Path("/nonexistent")) as tooling,
        pytest.raises(HookFailed, match=r"answered 409: weights locked"),
    ):
        call_hook("set_weight", Hook(url=f"{tooling.url}/locked"), 0.5)
    with pytest.raises(HookFailed, match=r"rollback hook POST .* failed: ConnectError"):
        call_hook("rollback", Hook(url=f"http://127.0.0.1:{free_port()}/r"), 0.0)
