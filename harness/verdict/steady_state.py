"""Did an experiment start from steady state? Judged on the signals read before its load began
(`harness/chaos/steady_state.py` reads them): a breaker still open, an alert still firing or a
fresh request not answered in full by the primary pool after the policy's bound means the
experiment would measure an earlier fault's aftermath, so it fails and its fault is not
injected. Signals the stack does not have are named, never assumed."""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.verdict.checks import CheckResult


@dataclass(frozen=True)
class FrontDoorAnswer:
    """A fresh streamed request through the front door, as the load sends them."""

    status: int | None  # None: no HTTP answer at all
    served_by: str | None = None  # the served-by header's value; None: the answer has none
    ttft_s: float | None = None
    error: str | None = None  # the transport's, the stream's or the error answer's words
    chunks: int = 0

    def off(self) -> str | None:
        """What is wrong with the answer for a steady state, None when nothing."""
        if self.status is None:
            return f"no answer ({self.error})"
        if self.status != 200:
            return f"answered {self.status}" + (f": {self.error}" if self.error else "")
        if self.error is not None:
            return f"the stream failed ({self.error})"
        if self.chunks == 0:
            return "the stream carried no text"
        if self.served_by is not None and self.served_by != "primary":
            return f"served by {self.served_by}, not the primary pool"
        return None


@dataclass
class SteadySignals:
    """One reading of the signals; None where the stack does not have the signal (or, for the
    answer, where the free signals were not steady and no request was sent)."""

    open_breakers: list[str] | None = None  # "<gateway> pool=primary"
    firing_alerts: list[str] | None = None
    answer: FrontDoorAnswer | None = None
    unread: list[str] = field(default_factory=list)  # why a signal is left out

    @property
    def steady(self) -> bool:
        """The free signals settled and, once asked, the front door answered as it should."""
        free = not self.open_breakers and not self.firing_alerts
        return free and (self.answer is None or self.answer.off() is None)

    def off(self) -> list[str]:
        """What is not steady, in words."""
        out = []
        if self.open_breakers:
            out.append("breaker open: " + ", ".join(self.open_breakers))
        if self.firing_alerts:
            out.append("alert firing: " + ", ".join(self.firing_alerts))
        if self.answer is not None and (wrong := self.answer.off()) is not None:
            out.append(f"a request through the front door: {wrong}")
        return out


@dataclass(frozen=True)
class SteadyStateEvidence:
    signals: SteadySignals
    waited_s: float
    bound_s: float  # the policy's recovery timeout plus a margin


def steady_state_check(title: str, evidence: SteadyStateEvidence) -> CheckResult:
    s = evidence.signals
    read = [
        what
        for what, value in (
            ("breakers", s.open_breakers),
            ("alerts", s.firing_alerts),
            ("a request", s.answer),
        )
        if value is not None
    ]
    measured: dict[str, float | int | str | None] = {
        "waited_s": round(evidence.waited_s, 1),
        "bound_s": evidence.bound_s,
        "signals": ", ".join(read) or "none",
    }
    if s.answer is not None:
        measured["request_status"] = s.answer.status
        measured["request_served_by"] = s.answer.served_by
        measured["request_ttft_ms"] = (
            None if s.answer.ttft_s is None else round(s.answer.ttft_s * 1000, 1)
        )
    unread = [f"not part of the hypothesis: {why}" for why in s.unread]
    name = f"{title}: started from steady state"
    if not read:
        return CheckResult(
            name=name,
            category="chaos",
            outcome="fail",
            reasons=["no steady-state signal could be read", *unread],
            measured=measured,
        )
    if not s.steady:
        return CheckResult(
            name=name,
            category="chaos",
            outcome="fail",
            reasons=[
                f"did not start from steady state: {'; '.join(s.off())} after waiting "
                f"{evidence.waited_s:.0f}s (the policy's bound {evidence.bound_s:g}s); the "
                "fault was not injected",
                *unread,
            ],
            measured=measured,
        )
    waited = f" after {evidence.waited_s:.0f}s" if evidence.waited_s >= 1 else ""
    return CheckResult(
        name=name,
        category="chaos",
        outcome="pass",
        reasons=[f"steady{waited}: {' and '.join(_steady_words(s))}", *unread],
        measured=measured,
    )


def _steady_words(s: SteadySignals) -> list[str]:
    out = []
    if s.open_breakers is not None:
        out.append("no breaker open")
    if s.firing_alerts is not None:
        out.append("no alert firing")
    if s.answer is not None:
        by = "" if s.answer.served_by is None else f" by the {s.answer.served_by} pool"
        out.append(f"a fresh request answered{by}")
    return out
