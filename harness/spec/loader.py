"""Read YAML spec files into models; every problem becomes a ConfigError with file and field."""

from __future__ import annotations

import reprlib
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from harness.errors import ConfigError, ConfigProblem

M = TypeVar("M", bound=BaseModel)


def _location(loc: tuple[object, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        else:
            parts.append(("." if parts else "") + str(item))
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


# A value quoted in a message: long strings and deep or long structures are cut short.
_SHORT = reprlib.Repr()
_SHORT.maxstring = _SHORT.maxother = 120
_SHORT.maxlist = _SHORT.maxtuple = _SHORT.maxdict = 6
_SHORT.maxlevel = 2


def problems_from_validation(err: ValidationError) -> list[ConfigProblem]:
    problems = []
    for e in err.errors():
        # Drop discriminator tags pydantic inserts ("server.llama_cpp.threads" -> "server.threads").
        loc = _without_union_tags(tuple(e["loc"]))
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown field (check the spelling)"
        elif "input" in e and e["type"] not in ("missing",) and not isinstance(e["input"], dict):
            msg = f"{msg}, got {_SHORT.repr(e['input'])}"
        problems.append(ConfigProblem(_location(loc), msg))
    return problems


def parse_model(model: type[M], data: object, source: str) -> M:
    try:
        return model.model_validate(data if data is not None else {})
    except ValidationError as err:
        raise ConfigError(source, problems_from_validation(err)) from None


MAX_ALIASES = 200


class _StrictLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping (it would silently win) and
    more aliases than a spec file needs (nested aliases expand exponentially)."""

    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            self._aliases = getattr(self, "_aliases", 0) + 1
            if self._aliases > MAX_ALIASES:
                raise yaml.composer.ComposerError(
                    None,
                    None,
                    f"more than {MAX_ALIASES} aliases; expected a plain spec file",
                    self.peek_event().start_mark,  # type: ignore[no-untyped-call]
                )
        return super().compose_node(parent, index)  # type: ignore[arg-type]

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        first_line: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *base` merges: keys given beside it override, as YAML says
            key = self.construct_object(key_node, deep=True)
            try:
                seen = first_line.get(key)
            except TypeError:
                continue  # an unhashable key: the safe loader refuses it with its own words
            if seen is not None:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping",
                    node.start_mark,
                    f"duplicate key {key!r} (first given on line {seen}); expected each key once",
                    key_node.start_mark,
                )
            first_line[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep)


def read_spec_text(path: Path) -> str:
    """The file's text; a missing, unreadable, binary or non-UTF-8 file is a ConfigError."""
    source = str(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(source, [ConfigProblem("", "file not found")]) from None
    except IsADirectoryError:
        raise ConfigError(
            source, [ConfigProblem("", "is a folder, expected a YAML file")]
        ) from None
    except OSError as exc:
        raise ConfigError(source, [ConfigProblem("", f"cannot read: {exc.strerror}")]) from None
    if b"\x00" in raw:
        at = raw.index(b"\x00")
        raise ConfigError(
            source,
            [
                ConfigProblem(
                    _line_col(raw, at),
                    "binary file (a NUL byte); expected YAML text in UTF-8",
                )
            ],
        )
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            source,
            [
                ConfigProblem(
                    _line_col(raw, exc.start),
                    f"not UTF-8 (byte 0x{raw[exc.start]:02x}); expected YAML text in UTF-8",
                )
            ],
        ) from None


def _line_col(raw: bytes, offset: int) -> str:
    line = raw.count(b"\n", 0, offset) + 1
    col = offset - (raw.rfind(b"\n", 0, offset) + 1) + 1
    return f"line {line}, column {col}"


def parse_yaml(text: str, source: str) -> object:
    """YAML text to data, refusing duplicate keys; every failure names the line."""
    try:
        return yaml.load(text, Loader=_StrictLoader)  # a SafeLoader: no arbitrary objects
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        text = str(exc).replace('"<unicode string>"', source)  # PyYAML's name for a str stream
        raise ConfigError(source, [ConfigProblem(where, f"not valid YAML: {text}")]) from None
    except yaml.YAMLError as exc:  # the reader's errors: characters YAML does not allow
        raise ConfigError(source, [ConfigProblem("", f"not valid YAML: {exc}")]) from None
    except RecursionError:
        raise ConfigError(source, [ConfigProblem("", "nested too deeply")]) from None


def read_yaml_mapping(path: Path | str, *, allow_empty: bool = False) -> dict[str, Any]:
    """The top-level mapping of a spec file. An empty file is refused unless `allow_empty`
    (the caller's flag, e.g. `--allow-empty`) says an all-defaults spec is meant."""
    path = Path(path)
    data = parse_yaml(read_spec_text(path), str(path))
    if data is None:
        if allow_empty:
            return {}
        raise ConfigError(
            str(path),
            [
                ConfigProblem(
                    "",
                    "the file is empty (no settings); expected a mapping of fields (harness "
                    "validate, up, gate and chaos take --allow-empty when all defaults are meant)",
                )
            ],
        )
    if not isinstance(data, dict):
        raise ConfigError(
            str(path),
            [ConfigProblem("", f"expected a mapping at the top level, got {type(data).__name__}")],
        )
    return data


def load_yaml_model(model: type[M], path: Path | str, *, allow_empty: bool = False) -> M:
    return parse_model(model, read_yaml_mapping(path, allow_empty=allow_empty), str(path))


def referenced_file(referrer: Path, field: str, value: str) -> Path:
    """A file another spec file names, relative to the referring file's folder; it must exist."""
    path = (referrer.parent / value).resolve()
    if not path.is_file():
        what = "is a folder" if path.is_dir() else "does not exist"
        raise ConfigError(
            str(referrer),
            [
                ConfigProblem(
                    field,
                    f"{value!r} {what} ({path}, relative to this file's folder); "
                    "expected a path to a YAML file",
                )
            ],
        )
    return path
