"""Read YAML spec files into models; every problem becomes a ConfigError with file and field."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from harness.errors import ConfigError, ConfigProblem

M = TypeVar("M", bound=BaseModel)


def _location(loc: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        else:
            parts.append(("." if parts else "") + item)
    return "".join(parts)


# Tags pydantic inserts into error locations of tagged unions, by the field that holds the union.
_UNION_TAGS = {
    "server": {"llama_cpp", "simulator", "vllm"},
    "load": {"open", "closed"},
    "fault": {"proxy_down", "latency", "pause", "kill"},
}


def _without_union_tags(loc: tuple[int | str, ...]) -> tuple[int | str, ...]:
    """`primary.server.simulator.seed` -> `primary.server.seed`, `load.open.rate_rps` -> ..."""
    out: list[int | str] = []
    for i, part in enumerate(loc):
        parent = loc[i - 1] if i else None
        if isinstance(parent, str) and part in _UNION_TAGS.get(parent, ()):
            continue
        out.append(part)
    return tuple(out)


def problems_from_validation(err: ValidationError) -> list[ConfigProblem]:
    problems = []
    for e in err.errors():
        # Drop discriminator tags pydantic inserts ("server.llama_cpp.threads" -> "server.threads").
        loc = _without_union_tags(tuple(e["loc"]))
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown field (check the spelling)"
        elif "input" in e and e["type"] not in ("missing",) and not isinstance(e["input"], dict):
            msg = f"{msg}, got {e['input']!r}"
        problems.append(ConfigProblem(_location(loc), msg))
    return problems


def parse_model(model: type[M], data: object, source: str) -> M:
    try:
        return model.model_validate(data if data is not None else {})
    except ValidationError as err:
        raise ConfigError(source, problems_from_validation(err)) from None


def load_yaml_model(model: type[M], path: Path | str) -> M:
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(str(path), [ConfigProblem("", "file not found")]) from None
    except OSError as exc:
        raise ConfigError(str(path), [ConfigProblem("", f"cannot read: {exc}")]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(str(path), [ConfigProblem(where, f"not valid YAML: {exc}")]) from None
    if data is not None and not isinstance(data, dict):
        raise ConfigError(
            str(path),
            [ConfigProblem("", f"expected a mapping at the top level, got {type(data).__name__}")],
        )
    return parse_model(model, data, str(path))
