"""Which prompts each load run sent, per target, so a run that repeats them is told.

A server's prompt cache answers a prompt it has seen much faster (llama.cpp: TTFT p50 31 ms
against 253 ms for the same prompts sent again), so a run that repeats an earlier run's prompts
against the same target measures that cache, not the server. Runs draw a fresh seed unless
`--seed` is given; this record catches the repeat when it is.

The record is one small JSON file under the runs folder: per target URL the fingerprints of the
last KEEP runs, for the last TARGETS targets. A damaged or missing file starts a new record.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Any

from harness.load.workload import WorkloadGenerator
from harness.spec.load import Workload

RECORD_NAME = "load-prompts.json"
KEEP = 50
TARGETS = 20
# Prompts fingerprinted: the first ones of worker 0, the ones every worker count sends.
PROMPTS = 16


def fingerprint(workload: Workload, seed: int) -> str:
    """The prompts a run sends first (their text only: max_tokens or the model do not change what
    a prompt cache holds)."""
    gen = WorkloadGenerator(workload, model="", default_api_key="", seed=seed, worker=0)
    h = hashlib.sha256()
    for _ in range(PROMPTS):
        h.update(gen.next().prompt.encode())
        h.update(b"\0")
    return h.hexdigest()[:16]


def _read(path: Path) -> dict[str, list[dict[str, Any]]]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


_RECORDING = threading.Lock()


def check_and_record(
    path: Path, target_url: str, print_: str, seed: int, run_dir: Path, at: str
) -> str | None:
    """Record this run's fingerprint `print_` for the target; return a warning when an earlier
    run against the same target had the same one."""
    # Two loads of one process (a rollout comparing two URLs) start together: one at a time here.
    with _RECORDING:
        record = _read(path)
        runs = [r for r in record.pop(target_url, []) if isinstance(r, dict)]
        earlier = next((r for r in reversed(runs) if r.get("fingerprint") == print_), None)
        runs = [*runs, {"fingerprint": print_, "seed": seed, "run_dir": str(run_dir), "at": at}]
        record[target_url] = runs[-KEEP:]  # re-inserted last: the most recent target
        for old in list(record)[:-TARGETS]:
            del record[old]
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(record, indent=1))
        tmp.replace(path)
    if earlier is None:
        return None
    return (
        f"this run repeats the prompts of an earlier run against {target_url} "
        f"({earlier.get('at')}, {earlier.get('run_dir')}; seed {seed}): the server's prompt "
        "cache may answer them faster than new prompts. Leave out --seed for fresh prompts"
    )
