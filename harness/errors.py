"""Exceptions raised by the harness.

HarnessError
 ├── ConfigError          bad spec or option: file, field, what was expected (exit code 2)
 ├── ToolMissingError     a binary the stack needs is not installed (hint: `make install`)
 └── StackError
      └── ServiceStartError   a service did not become ready; carries its log tail
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


class HarnessError(Exception):
    """Base of every error the harness raises on purpose."""


@dataclass(frozen=True)
class ConfigProblem:
    """One thing wrong with a configuration file: where and why."""

    location: str
    message: str

    def __str__(self) -> str:
        return f"{self.location}: {self.message}" if self.location else self.message


@dataclass
class ConfigError(HarnessError):
    """A configuration file or option is invalid. Maps to exit code 2."""

    source: str
    problems: list[ConfigProblem] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(str(self))

    def __str__(self) -> str:
        lines = [f"invalid configuration in {self.source}:"]
        lines += [f"  {self.source}: {p}" for p in self.problems]
        return "\n".join(lines)


class ToolMissingError(HarnessError):
    """A binary or model file the stack needs is not installed."""

    def __init__(self, what: str, looked_in: list[Path] | None = None) -> None:
        where = ", ".join(str(p) for p in looked_in or [])
        msg = f"{what} is not installed"
        if where:
            msg += f" (looked in {where})"
        super().__init__(msg + "; run `make install`")


class StackError(HarnessError):
    """The stack could not be brought up or driven."""


class ServiceStartError(StackError):
    """A service did not become ready in time; the message ends with its log tail."""

    def __init__(self, service: str, reason: str, log_tail: str = "", hint: str = "") -> None:
        self.service = service
        self.reason = reason
        self.log_tail = log_tail
        msg = f"service {service!r} failed to start: {reason}"
        if hint:
            msg += f"\nhint: {hint}"
        if log_tail:
            msg += f"\n--- last lines of {service} log ---\n{log_tail}"
        super().__init__(msg)
