"""Did an experiment start from steady state? Judged on the signals read before its load began
(`harness/chaos/steady_state.py` reads them): a breaker still open or an alert still firing after
the policy's bound means the experiment would measure an earlier fault's aftermath, so it fails
and its fault is not injected. Signals the stack does not have are named, never assumed."""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.verdict.checks import CheckResult


@dataclass
class SteadySignals:
    """One reading of the signals; None where the stack does not have the signal."""

    open_breakers: list[str] | None = None  # "<gateway> pool=primary"
    firing_alerts: list[str] | None = None
    unread: list[str] = field(default_factory=list)  # why a signal is left out

    @property
    def steady(self) -> bool:
        return not self.open_breakers and not self.firing_alerts

    def off(self) -> list[str]:
        """What is not steady, in words."""
        out = []
        if self.open_breakers:
            out.append("breaker open: " + ", ".join(self.open_breakers))
        if self.firing_alerts:
            out.append("alert firing: " + ", ".join(self.firing_alerts))
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
        for what, value in (("breakers", s.open_breakers), ("alerts", s.firing_alerts))
        if value is not None
    ]
    measured: dict[str, float | int | str | None] = {
        "waited_s": round(evidence.waited_s, 1),
        "bound_s": evidence.bound_s,
        "signals": ", ".join(read) or "none",
    }
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
    return out
