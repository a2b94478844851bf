"""A rollout's front door: one nginx in front of the baseline's and the candidate's front doors,
the candidate's share of requests set at run time.

`split_clients` on `$request_id` sends each request to one version; every answer names it in the
version header (`harness.wire`), so the load records who served each request. A share change
rewrites the included weights file and reloads nginx (SIGHUP: old workers finish the streams they
hold, bounded by the drain timeout). `restart` mode stops and starts nginx instead: it exists to
show what an ungraceful switch costs, and the rollout's switch checks see it fail.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Literal

from harness import wire
from harness.clients.poll import poll_until
from harness.errors import StackError
from harness.paths import STACK_DIR
from harness.stack.planner import NGINX_TMP_DIRS, nginx_def
from harness.stack.provider import Launcher, ServiceHandle
from harness.stack.render import fill_template

NAME = "split-front"
BASELINE, CANDIDATE = "baseline", "candidate"
SwitchMode = Literal["reload", "restart"]


def render_weights(candidate_share: float) -> str:
    """The included file: `$version` per request, the candidate taking `candidate_share`."""
    head = "# Written by the harness (harness/stack/split_front.py); rewritten on every switch.\n"
    if candidate_share <= 0:
        return head + f"map $request_id $version {{ default {BASELINE}; }}\n"
    if candidate_share >= 1:
        return head + f"map $request_id $version {{ default {CANDIDATE}; }}\n"
    pct = f"{candidate_share * 100:.2f}".rstrip("0").rstrip(".")
    return head + (
        f'split_clients "${{request_id}}" $version {{ {pct}% {CANDIDATE}; * {BASELINE}; }}\n'
    )


def render_front(
    *,
    run_dir: Path,
    port: int,
    baseline_port: int,
    candidate_port: int,
    weights_path: Path,
    drain_timeout_s: float,
) -> str:
    template = (STACK_DIR / "nginx" / "split-front.conf.tmpl").read_text()
    # As root, nginx would switch its workers to "nobody", who cannot write our run folder.
    user_line = "user root root;" if os.geteuid() == 0 else ""
    return fill_template(
        template,
        {
            "user_line": user_line,
            "run_dir": run_dir,
            "log_dir": run_dir / "logs",
            "tmp_dir": run_dir / "nginx-tmp",
            "weights_file": weights_path,
            "port": port,
            "baseline_port": baseline_port,
            "candidate_port": candidate_port,
            "drain_timeout_s": max(1, round(drain_timeout_s)),
            "version_header": wire.current().version,
        },
    )


def _port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/", 1)[0])


class SplitFront:
    """The split front as a running service; `share` is the candidate's share now."""

    def __init__(
        self,
        launcher: Launcher,
        run_dir: Path,
        port: int,
        baseline_url: str,
        candidate_url: str,
        drain_timeout_s: float,
    ) -> None:
        self.run_dir = run_dir
        self.url = f"http://127.0.0.1:{port}"
        self.weights_path = run_dir / "config" / f"{NAME}-weights.conf"
        conf = run_dir / "config" / f"{NAME}.conf"
        conf.parent.mkdir(parents=True, exist_ok=True)
        (run_dir / "logs").mkdir(exist_ok=True)
        for sub in NGINX_TMP_DIRS:
            (run_dir / "nginx-tmp" / sub).mkdir(parents=True, exist_ok=True)
        self.share = 0.0
        self._write_weights(0.0)
        conf.write_text(
            render_front(
                run_dir=run_dir,
                port=port,
                baseline_port=_port_of(baseline_url),
                candidate_port=_port_of(candidate_url),
                weights_path=self.weights_path,
                drain_timeout_s=drain_timeout_s,
            )
        )
        self.definition = nginx_def(
            NAME, "split_front", conf, run_dir, port, f"{self.url}/split-front-health", 0
        )
        self.service: ServiceHandle = launcher.launch(
            self.definition, run_dir / "logs" / f"{NAME}.log"
        )
        self._wait_ready()

    def _write_weights(self, share: float) -> None:
        tmp = self.weights_path.with_suffix(".tmp")
        tmp.write_text(render_weights(share))
        tmp.replace(self.weights_path)

    def _wait_ready(self, timeout_s: float = 15.0) -> None:
        why = poll_until(
            self.definition.ready.probe, timeout_s, 0.05, until=lambda reason: reason is None
        )
        if why is not None:
            raise StackError(
                f"{NAME} not ready after {timeout_s:g}s ({why}); log: {self.service.log_tail(10)}"
            )

    def set_share(self, share: float, mode: SwitchMode = "reload") -> None:
        """Move the candidate's share: a graceful reload, or (`restart`) a stop and a start."""
        self._write_weights(share)
        self.share = share
        if mode == "restart":
            self.service.restart()
            self._wait_ready()
            return
        self.service.reload()
        # The new workers read the new weights; the master takes a moment to start them.
        time.sleep(0.05)

    def stop(self) -> None:
        self.service.stop()
