"""The harness's autoscaler makes no move in the burst's last settle time: a move there would be
seen by no request, and its check would fail for want of one."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from harness.rollout import autoscale
from harness.spec.rollout import RolloutSpec

SCALE = Path(__file__).parents[1] / "fixtures" / "rollout" / "scale.yaml"


class _Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def now(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.t += s


class _NoPrometheus:
    def __init__(self, *_: Any, **__: Any) -> None:
        pass

    def __enter__(self) -> _NoPrometheus:
        return self

    def __exit__(self, *_: object) -> None:
        pass


class ScriptedAutoscaler(autoscale.Autoscaler):
    """The controller with its signal scripted by time and its moves only recorded."""

    def __init__(self, spec: RolloutSpec, rate_at: Any, clock: _Clock) -> None:
        stack = SimpleNamespace(
            endpoints=SimpleNamespace(prometheus=""), prometheus_headers=lambda: {}
        )
        super().__init__(spec, stack, None, [], lambda _: None)  # type: ignore[arg-type]
        self.rate_at, self.clock, self.made = rate_at, clock, []

    def _read(self, prom: Any) -> float | None:
        return float(self.rate_at(self.clock.t))

    def _scale_out(self, crossed: float, decided: float) -> None:
        self.made.append(("out", decided))
        self.events.append(SimpleNamespace(kind="out"))  # type: ignore[arg-type]
        n = len(self.added) + 2
        self.added.append((f"primary-{n}", f"p{n}", None))  # type: ignore[arg-type]

    def _scale_in(self) -> None:
        self.made.append(("in", self.clock.t))
        self.added.pop()


def _spec() -> RolloutSpec:
    raw = yaml.safe_load(SCALE.read_text())
    raw["autoscale"] = {**raw["autoscale"], "target_rps_per_replica": 5}
    raw["autoscale"].pop("capacity")
    return RolloutSpec.model_validate(raw)


def _run(monkeypatch: pytest.MonkeyPatch, moves_until_s: float | None) -> list[tuple[str, float]]:
    clock = _Clock()
    monkeypatch.setattr(autoscale, "now", clock.now)
    # Its module's `time` only: the global time.sleep stays the real one.
    monkeypatch.setattr(autoscale, "time", SimpleNamespace(sleep=clock.sleep))
    monkeypatch.setattr(autoscale, "PrometheusClient", _NoPrometheus)
    monkeypatch.setattr(autoscale, "primary_urls", lambda _: ["p0", "p1"])
    # 30 requests/s from 5 s to 24 s (two replicas carry 10 at the target of 5), 3 before and after;
    # the load ends at 34 s.
    scaler = ScriptedAutoscaler(_spec(), lambda t: 30 if 5 <= t < 24 else 3, clock)
    scaler.run(until=lambda: clock.t >= 34, moves_until_s=moves_until_s)
    return scaler.made


def test_without_a_bound_the_last_scale_in_can_come_as_the_load_ends(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made = _run(monkeypatch, None)
    assert [kind for kind, _ in made].count("out") == 2
    assert made[-1][0] == "in" and made[-1][1] > 32  # within the last settle time (2 s) of 34 s


def test_no_move_is_made_after_the_bound_but_the_earlier_ones_are(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    unbounded = _run(monkeypatch, None)
    made = _run(monkeypatch, 32.0)
    assert made == [m for m in unbounded if m[1] <= 32.0]
    assert [kind for kind, _ in made] == ["out", "out", "in"]
