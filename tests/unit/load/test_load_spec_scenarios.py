"""The load spec (strict: typos fail loudly), built-in scenarios and command-line overrides."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from harness.errors import ConfigError
from harness.load.scenarios import Overrides, apply_overrides, builtin_scenarios, load_scenario
from harness.spec.load import ClosedLoop, LoadSpec, OpenLoop


def test_every_builtin_scenario_is_valid() -> None:
    names = builtin_scenarios()
    assert {"chat", "long-prompt", "cache-mix", "burst", "tenants"} <= set(names)
    for name in names:
        assert load_scenario(name).name == name
    assert load_scenario(None).name == "chat"
    assert load_scenario("cache_mix").workload.repeated_share == 0.5


def test_durations_accept_units() -> None:
    s = LoadSpec.model_validate(
        {"duration_s": "2m", "request_timeout_s": "500ms", "drain_timeout_s": 3}
    )
    assert (s.duration_s, s.request_timeout_s, s.drain_timeout_s) == (120.0, 0.5, 3.0)
    with pytest.raises(ValidationError, match="not a duration"):
        LoadSpec.model_validate({"duration_s": "soon"})


def test_unknown_fields_and_bad_values_fail(tmp_path: Path) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text(
        "kind: load\nworklaod: {}\nload: {kind: open, rate_rps: 0}\nslos: ['ttft_p95<=1']\n"
    )
    with pytest.raises(ConfigError) as e:
        load_scenario(str(f))
    where = {p.location for p in e.value.problems}
    assert {"worklaod", "load.rate_rps", "slos"} <= where, where
    assert any("unknown field" in p.message for p in e.value.problems)


def test_shape_must_fit_the_run() -> None:
    with pytest.raises(ValidationError, match="ramp_s"):
        LoadSpec.model_validate({"duration_s": 10, "shape": {"kind": "ramp", "ramp_s": 20}})
    with pytest.raises(ValidationError, match="tenant names"):
        LoadSpec.model_validate(
            {
                "workload": {
                    "tenants": [{"name": "a", "api_key": "x"}, {"name": "a", "api_key": "y"}]
                }
            }
        )


def test_overrides_switch_between_open_and_closed_loop() -> None:
    base = load_scenario("chat")
    open_ = apply_overrides(
        base, Overrides(rate_rps=12.5, arrival="constant", duration="5s", processes=2)
    )
    assert isinstance(open_.load, OpenLoop) and open_.load.rate_rps == 12.5
    assert open_.load.arrival == "constant" and open_.duration_s == 5 and open_.processes == 2
    closed = apply_overrides(open_, Overrides(users=3, max_tokens=9, slos=["ttft_p95_ms<=500"]))
    assert isinstance(closed.load, ClosedLoop) and closed.load.users == 3
    assert closed.workload.max_tokens == 9 and closed.slos == ("ttft_p95_ms<=500",)
    # an open-loop scenario keeps its other settings when only the rate changes
    burst = apply_overrides(load_scenario("burst"), Overrides(rate_rps=40))
    assert (
        isinstance(burst.load, OpenLoop)
        and burst.load.arrival == "burst"
        and burst.load.burst_size == 20
    )


@pytest.mark.parametrize(
    ("o", "where"),
    [
        (Overrides(rate_rps=1, users=1), "--rate/--users"),
        (Overrides(arrival="poisson"), "--arrival"),
        (Overrides(rate_rps=-1), "--rate (load.rate_rps)"),
        (Overrides(users=0), "--users (load.users)"),
        (Overrides(shape="zigzag"), "--shape (shape.kind)"),
        (Overrides(slos=["nonsense"]), "--slo (slos)"),
        (Overrides(processes=0), "--processes (processes)"),
    ],
)
def test_bad_overrides_name_the_option(o: Overrides, where: str) -> None:
    with pytest.raises(ConfigError) as e:
        apply_overrides(load_scenario("chat"), o)
    assert any(p.location == where for p in e.value.problems), e.value


def test_unknown_scenario_lists_the_builtins() -> None:
    with pytest.raises(ConfigError, match="cache-mix"):
        load_scenario("nope")
