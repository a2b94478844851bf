"""Alerts proven live: the rules the candidate deployed, with their windows shortened, loaded into
its Prometheus while the stack runs, so a real fault can make an alert fire, reach Alertmanager
and resolve within a gate's minutes.

The short copy is generated from the deployed rule file itself (never a hand-kept copy): every
range selector `[5m]` becomes the short window and every `for:` the short hold, nothing else
changes (same names, expressions, thresholds, labels). It is written beside the deployed rules as
`alerts-live-gate.yml` (Prometheus' rule_files glob picks it up on a reload) and removed again,
with another reload, whatever happens.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import yaml

from harness.clients.poll import poll_until
from harness.clients.prometheus import PrometheusClient
from harness.errors import StackError

LIVE_FILE = "alerts-live-gate.yml"
LIVE_GROUP_SUFFIX = "_gate_live"
_RANGE = re.compile(r"\[(\d+(?:ms|s|m|h|d|w|y))+\]")


def short_window_rules(deployed: dict[str, Any], window: str, hold: str) -> dict[str, Any]:
    """The deployed rule groups with every range selector set to `window` and every `for` to
    `hold`; group names get a suffix so both copies load side by side."""
    groups = []
    for group in deployed.get("groups") or []:
        rules = []
        for rule in group.get("rules") or []:
            short = dict(rule)
            if "expr" in short:
                short["expr"] = _RANGE.sub(f"[{window}]", str(short["expr"]))
            if "for" in short:
                short["for"] = hold
            rules.append(short)
        groups.append({**group, "name": f"{group['name']}{LIVE_GROUP_SUFFIX}", "rules": rules})
    return {"groups": groups}


def _reload(prometheus: str) -> None:
    with PrometheusClient(prometheus, timeout_s=10) as prom:
        prom.reload()


def _live_groups(prometheus: str) -> set[str]:
    with PrometheusClient(prometheus, timeout_s=10) as prom:
        return {r.group for r in prom.rules() if r.group.endswith(LIVE_GROUP_SUFFIX)}


@contextmanager
def live_rules(
    prometheus: str, deployed_rules: Path, window: str = "15s", hold: str = "5s"
) -> Iterator[list[str]]:
    """Load the short-window copy of `deployed_rules` for the duration of the block; yields the
    alert names it holds."""
    deployed = yaml.safe_load(deployed_rules.read_text(encoding="utf-8")) or {}
    short = short_window_rules(deployed, window, hold)
    path = deployed_rules.parent / LIVE_FILE
    path.write_text(yaml.safe_dump(short, sort_keys=False), encoding="utf-8")
    try:
        _reload(prometheus)
        if not poll_until(lambda: _live_groups(prometheus), 15, 0.25):
            raise StackError(f"Prometheus did not load {path} after a reload")
        yield [str(r["alert"]) for g in short["groups"] for r in g["rules"] if "alert" in r]
    finally:
        path.unlink(missing_ok=True)
        try:
            _reload(prometheus)
        except (httpx.HTTPError, RuntimeError):
            pass  # the stack is going down, or Prometheus with it: nothing left to undo
