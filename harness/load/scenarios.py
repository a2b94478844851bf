"""Built-in scenarios (scenarios/*.yaml), and command-line overrides applied on top of a spec.

Overrides are merged into the spec's data and the result validated again, so a bad option fails
with the option and the field it landed in ("--rate (load.rate_rps): ..."), just like a bad file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import ConfigError, ConfigProblem
from harness.paths import PROJECT_ROOT
from harness.spec.load import LoadSpec
from harness.spec.loader import load_yaml_model, parse_model

SCENARIO_DIR = PROJECT_ROOT / "scenarios"
DEFAULT_SCENARIO = "chat"
CLI_SOURCE = "command line"


# Spec field -> the option that sets it, to name the option in a problem it caused.
_OPTION_OF_FIELD = {
    "load.rate_rps": "--rate",
    "load.users": "--users",
    "load.arrival": "--arrival",
    "load.max_send_lag_ms": "--max-send-lag-ms",
    "shape.kind": "--shape",
    "duration_s": "--duration",
    "processes": "--processes",
    "workload.max_tokens": "--max-tokens",
    "workload.completion_share": "--endpoint",
    "workload.prompt_words": "--prompt-words",
    "workload.ignore_eos": "--ignore-eos",
    "workload.prefix_share": "--prefix-share",
    "workload.dataset": "--dataset",
    "load.trace": "--trace",
    "model": "--model",
    "seed": "--seed",
    "slos": "--slo",
}


def _untag_location(location: str) -> str:
    """Drop pydantic's union tags ("load.open.rate_rps" -> "load.rate_rps")."""
    return location.replace("load.open.", "load.").replace("load.closed.", "load.")


def _untag(err: ConfigError) -> ConfigError:
    fixed = [ConfigProblem(_untag_location(p.location), p.message) for p in err.problems]
    return ConfigError(err.source, fixed)


def _name_options(err: ConfigError, given: set[str]) -> ConfigError:
    """Prefix each problem's location with the option (among those given) that set the field."""
    fixed = []
    for p in err.problems:
        loc = _untag_location(p.location)
        option = next(
            (
                opt
                for fld, opt in _OPTION_OF_FIELD.items()
                if opt in given and (loc == fld or loc.startswith(fld + "."))
            ),
            None,
        )
        fixed.append(ConfigProblem(f"{option} ({loc})" if option else loc, p.message))
    return ConfigError(err.source, fixed)


def _load_file(path: Path) -> LoadSpec:
    from harness.load.inputs import resolve_inputs

    try:
        spec = load_yaml_model(LoadSpec, path)
    except ConfigError as err:
        raise _untag(err) from None
    return resolve_inputs(spec, path.parent, str(path))


def builtin_scenarios() -> list[str]:
    return sorted(p.stem for p in SCENARIO_DIR.glob("*.yaml"))


def load_scenario(name_or_path: str | None) -> LoadSpec:
    """A built-in scenario by name (`chat`, `cache-mix`, ...) or a load spec file."""
    value = name_or_path or DEFAULT_SCENARIO
    path = Path(value)
    if path.suffix in (".yaml", ".yml") or path.is_file():
        return _load_file(path)
    builtin = SCENARIO_DIR / f"{value.replace('_', '-')}.yaml"
    if builtin.is_file():
        return _load_file(builtin)
    raise ConfigError(
        CLI_SOURCE,
        [
            ConfigProblem(
                "--scenario",
                f"no scenario {value!r}: use one of {', '.join(builtin_scenarios())} "
                "or a load spec file (.yaml)",
            )
        ],
    )


@dataclass
class Overrides:
    """Command-line options that change a spec; None leaves the spec's value."""

    rate_rps: float | None = None
    users: int | None = None
    arrival: str | None = None
    max_send_lag_ms: float | None = None
    shape: str | None = None
    duration: str | None = None
    processes: int | None = None
    max_tokens: int | None = None
    model: str | None = None
    seed: int | None = None
    slos: list[str] = field(default_factory=list)
    endpoint: str | None = None  # chat | completions
    prompt_words: int | None = None
    ignore_eos: bool | None = None
    prefix_share: float | None = None
    dataset: str | None = None  # a conversations file (JSONL), relative to the current folder
    trace: str | None = None  # a trace file (open loop at its recorded times)


ENDPOINTS = {"chat": 0.0, "completions": 1.0}  # --endpoint -> workload.completion_share


def apply_overrides(spec: LoadSpec, o: Overrides) -> LoadSpec:
    problems = []
    if o.rate_rps is not None and o.users is not None:
        problems.append(
            ConfigProblem("--rate/--users", "give one: --rate (open loop) or --users (closed loop)")
        )
    if o.arrival is not None and o.rate_rps is None and spec.load.kind != "open":
        problems.append(ConfigProblem("--arrival", "applies to open-loop runs only: add --rate"))
    closed = o.users is not None or (o.rate_rps is None and spec.load.kind != "open")
    if o.max_send_lag_ms is not None and closed:
        problems.append(
            ConfigProblem("--max-send-lag-ms", "applies to open-loop runs only: add --rate")
        )
    if o.endpoint is not None and o.endpoint not in ENDPOINTS:
        problems.append(
            ConfigProblem(
                "--endpoint", f"unknown endpoint {o.endpoint!r}; valid: {', '.join(ENDPOINTS)}"
            )
        )
    if problems:
        raise ConfigError(CLI_SOURCE, problems)
    data: dict[str, Any] = spec.model_dump()
    load: dict[str, Any] = data["load"]
    if o.rate_rps is not None:
        keep = load if load["kind"] == "open" else {}
        data["load"] = {**keep, "kind": "open", "rate_rps": o.rate_rps}
    if o.users is not None:
        keep = load if load["kind"] == "closed" else {}
        data["load"] = {**keep, "kind": "closed", "users": o.users}
    if o.arrival is not None:
        data["load"]["arrival"] = o.arrival
    if o.max_send_lag_ms is not None and data["load"]["kind"] == "open":
        data["load"]["max_send_lag_ms"] = o.max_send_lag_ms
    if o.trace is not None:
        old = data["load"].get("trace") or {}
        keep = data["load"] if data["load"]["kind"] == "open" else {}
        data["load"] = {
            **keep,
            "kind": "open",
            "arrival": "trace",
            "trace": {**old, "path": o.trace},
        }
    if o.dataset is not None:
        data["workload"]["dataset"] = {**(data["workload"].get("dataset") or {}), "path": o.dataset}
    if o.shape is not None:
        data["shape"] = {**data["shape"], "kind": o.shape}
    for key, value in (
        ("duration_s", o.duration),
        ("processes", o.processes),
        ("model", o.model),
        ("seed", o.seed),
    ):
        if value is not None:
            data[key] = value
    workload: dict[str, Any] = data["workload"]
    knobs: tuple[tuple[str, object], ...] = (
        ("max_tokens", o.max_tokens),
        ("prompt_words", o.prompt_words),
        ("ignore_eos", o.ignore_eos),
        ("prefix_share", o.prefix_share),
        ("completion_share", ENDPOINTS.get(o.endpoint or "")),
    )
    for knob, setting in knobs:
        if setting is not None:
            workload[knob] = setting
    if o.slos:
        data["slos"] = [*data["slos"], *o.slos]
    given = {
        opt
        for opt, value in (
            ("--rate", o.rate_rps),
            ("--users", o.users),
            ("--arrival", o.arrival),
            ("--max-send-lag-ms", o.max_send_lag_ms),
            ("--shape", o.shape),
            ("--duration", o.duration),
            ("--processes", o.processes),
            ("--max-tokens", o.max_tokens),
            ("--model", o.model),
            ("--seed", o.seed),
            ("--slo", o.slos or None),
            ("--endpoint", o.endpoint),
            ("--prompt-words", o.prompt_words),
            ("--ignore-eos", o.ignore_eos),
            ("--prefix-share", o.prefix_share),
            ("--dataset", o.dataset),
            ("--trace", o.trace),
        )
        if value is not None
    }
    try:
        spec = parse_model(LoadSpec, data, CLI_SOURCE)
    except ConfigError as err:
        raise _name_options(err, given) from None
    if o.dataset is None and o.trace is None:
        return spec
    from harness.load.inputs import resolve_inputs

    return resolve_inputs(spec, Path.cwd(), CLI_SOURCE)
