"""Mutated versions of every shipped spec file: the loaders accept them or raise ConfigError,
never anything else (a traceback for the user)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.errors import ConfigError
from harness.spec.kinds import validate_file

ROOT = Path(__file__).parents[2]
SHIPPED = sorted(
    [
        ROOT / "stack" / "stack.yaml",
        ROOT / "reports" / "profiles" / "default.yaml",
        *(ROOT / "chaos").glob("*.yaml"),
        *(ROOT / "tests" / "fixtures").glob("*.yaml"),
    ]
)
# Text YAML and the models find hard: indicators, odd scalars, other types, wrong encodings.
NASTY = [
    b"",
    b":",
    b"- ",
    b"{",
    b"]",
    b"&a",
    b"*a",
    b"!!binary",
    b"~",
    b"-1",
    b"1e999",
    b"nan",
    b"0x10",
    b"'",
    b'"',
    b"\t",
    b"\x00",
    b"\xff",
    b"\xe9",
    b"\xef\xbb\xbf",
    b"\xc3\x28",
    b"<<: *a",
    b"? ",
    b"[[[[",
    b"yes",
    b"2024-01-01",
    b"10ms",
    b"-5s",
    b"null",
]


@st.composite
def mutated(draw: st.DrawFn) -> tuple[Path, bytes]:
    path = draw(st.sampled_from(SHIPPED))
    lines = path.read_bytes().splitlines(keepends=True)
    for _ in range(draw(st.integers(1, 3))):
        if not lines:
            break
        i = draw(st.integers(0, len(lines) - 1))
        op = draw(
            st.sampled_from(
                ["delete", "duplicate", "swap", "value", "insert", "byte", "indent", "truncate"]
            )
        )
        line = lines[i]
        if op == "delete":
            del lines[i]
        elif op == "duplicate":
            lines.insert(i, line)
        elif op == "swap":
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], line
        elif op == "value" and b":" in line:
            key = line.split(b":", 1)[0]
            lines[i] = key + b": " + draw(st.sampled_from(NASTY)) + b"\n"
        elif op == "insert":
            pos = draw(st.integers(0, len(line)))
            lines[i] = (
                line[:pos] + draw(st.sampled_from(NASTY) | st.binary(max_size=4)) + line[pos:]
            )
        elif op == "byte" and line:
            pos = draw(st.integers(0, len(line) - 1))
            lines[i] = line[:pos] + bytes([draw(st.integers(0, 255))]) + line[pos + 1 :]
        elif op == "indent":
            lines[i] = b"  " + line
        elif op == "truncate":
            lines = lines[:i]
    return path, b"".join(lines)


def test_loaders_never_raise_anything_but_config_errors() -> None:
    tried: list[str] = []

    @settings(
        max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
    )
    @given(mutated())
    def one(case: tuple[Path, bytes]) -> None:
        path, data = case
        with tempfile.TemporaryDirectory() as tmp:
            f = Path(tmp) / path.name
            f.write_bytes(data)
            try:
                tried.append(validate_file(f))
            except ConfigError as exc:
                tried.append("refused")
                assert str(f) in str(exc)

    one()
    print(
        f"{len(tried)} mutated versions of {len(SHIPPED)} shipped spec files: "
        f"{tried.count('refused')} refused with a ConfigError, the rest valid"
    )
    assert len(tried) >= 100 and len(SHIPPED) >= 6
