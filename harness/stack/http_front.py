"""The nginx HTTP fault front of a model-server replica: its config, and its faults switched at
run time (the included faults file rewritten, then a graceful reload).

`split_clients` on `$request_id` picks the share of requests a fault hits; a reload lets old
workers finish the requests they hold, so switching drops no connection.
"""

from __future__ import annotations

import os
from pathlib import Path

from harness.paths import STACK_DIR
from harness.spec.experiment import HTTP_FRONT_PREFIX, HttpError, StreamStall
from harness.stack.provider import ServiceHandle
from harness.stack.render import fill_template

FAULTS_FILE_SUFFIX = "-faults.conf"


def service_name(replica: str) -> str:
    return f"{HTTP_FRONT_PREFIX}{replica}"


def faults_file(config_dir: Path, replica: str) -> Path:
    return config_dir / f"{service_name(replica)}{FAULTS_FILE_SUFFIX}"


def render_front(
    *, run_dir: Path, replica: str, port: int, server_port: int, faults_path: Path
) -> str:
    template = (STACK_DIR / "nginx" / "fault-front.conf.tmpl").read_text()
    # As root, nginx would switch its workers to "nobody", who cannot write our run folder.
    user_line = "user root root;" if os.geteuid() == 0 else ""
    return fill_template(
        template,
        {
            "user_line": user_line,
            "name": service_name(replica),
            "run_dir": run_dir,
            "log_dir": run_dir / "logs",
            "tmp_dir": run_dir / "nginx-tmp",
            "faults_file": faults_path,
            "port": port,
            "server_port": server_port,
        },
    )


def _split(var: str, share: float, hit: str, miss: str, salt: str) -> str:
    # The salt keeps two faults' splits independent of each other.
    pct = f"{share * 100:.2f}".rstrip("0").rstrip(".")
    if share >= 1:
        return f"map $request_id ${var} {{ default {hit}; }}\n"
    return f'split_clients "{salt}${{request_id}}" ${var} {{ {pct}% {hit}; * {miss}; }}\n'


def render_faults(fault: HttpError | StreamStall | None) -> str:
    """The included file: every variable the front reads, with this fault (None: no fault)."""
    status = (
        _split("fault_status", fault.share, str(fault.status), "0", "status")
        if isinstance(fault, HttpError)
        else "map $request_id $fault_status { default 0; }\n"
    )
    retry = fault.retry_after_s if isinstance(fault, HttpError) else 1
    if isinstance(fault, StreamStall):
        rate = _split("fault_stall_rate", fault.share, str(fault.rate_bytes_per_s), "0", "stall")
        after = fault.after_bytes
    else:
        rate, after = "map $request_id $fault_stall_rate { default 0; }\n", 0
    return (
        "# Written by the harness (harness/stack/http_front.py); rewritten on every fault.\n"
        + status
        + f"map $request_id $fault_retry_after {{ default {retry}; }}\n"
        + rate
        + f"map $request_id $fault_stall_after {{ default {after}; }}\n"
    )


def switch(
    config_dir: Path, replica: str, front: ServiceHandle, fault: HttpError | StreamStall | None
) -> None:
    """Write the replica's faults file and reload its front (SIGHUP: graceful)."""
    path = faults_file(config_dir, replica)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(render_faults(fault))
    tmp.replace(path)
    front.reload()
