"""Exceptions raised by the harness.

HarnessError                  every error the harness raises on purpose (exit code 2)
 ├── ConfigError          bad spec or option: file, field, what was expected
 ├── ToolMissingError     a binary the stack needs is not installed (hint: `make install`)
 ├── StackError           the stack misbehaved while the harness drove it
 │    ├── ServiceStartError   a service did not become ready; carries its log tail
 │    ├── AnswerError         an answer that is not what the contract says
 │    ├── ToxiproxyError      (clients/toxiproxy.py) Toxiproxy refused or did not answer
 │    ├── PrometheusError     (clients/prometheus.py) a query failed or answered nonsense
 │    └── TokenizeError       (load/tokens.py) the model server could not size a prompt
 ├── LoadRunError         (load/runner.py) the load generator could not run
 ├── BaselineRefused      (nightly/run.py) a run that cannot become the baseline
 ├── DockerdError         (images/dockerd.py) the private dockerd did not start
 └── ImageBuildError      (images/build.py) an image did not build

A crash is never a verdict. What goes wrong talking to the stack (`is_stack_side`: the HTTP
client's transport and timeout errors, an unparseable or malformed answer, the `StackError`
family) is evidence and may fail a check; any other exception is a defect of the harness, and
the run ends "could not run" (exit 2) with its traceback kept in the run folder.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import httpx


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


class AnswerError(StackError):
    """An answer of the stack that is not what its contract says (not JSON, a missing field)."""


def is_stack_side(exc: BaseException) -> bool:
    """Whether `exc` is evidence about the stack rather than a defect of the harness."""
    return isinstance(exc, httpx.HTTPError | httpx.StreamError | json.JSONDecodeError | StackError)


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
