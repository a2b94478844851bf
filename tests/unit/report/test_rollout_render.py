"""The rollout journal in the rendered reports: the timeline, the looks, where it stopped."""

from harness.measure.timeseries import VersionFigures, VersionInterval
from harness.report.model import RunReport
from harness.report.render_html import render_html
from harness.report.render_text import render_markdown
from harness.report.rollout_figures import decided_looks, svg_rollout_timeline
from harness.report.rollout_journal import MoveRecord, RolloutJournal
from harness.verdict.rollout import FigureLook, StepLook


def figure(name: str, effect: float, low: float, high: float, verdict: str) -> FigureLook:
    return FigureLook.model_validate(
        {
            "name": name,
            "unit": "relative",
            "baseline": 40.0,
            "candidate": 40.0 * (1 + effect),
            "n_baseline": 400,
            "n_candidate": 100,
            "effect": effect,
            "low": low,
            "high": high,
            "margin": 0.1,
            "verdict": verdict,
            "reason": f"{name}: {verdict}",
        }
    )


def look(k: int, t_s: float, decision: str, ttft: FigureLook) -> StepLook:
    error_rate = FigureLook(
        name="error_rate",
        unit="pp",
        baseline=0.0,
        candidate=0.0,
        n_baseline=400,
        n_candidate=100,
        effect=0.0,
        low=-1.0,
        high=2.5,
        margin=3.0,
        verdict="no_worse",
        reason="error_rate: no worse",
    )
    return StepLook.model_validate(
        {
            "share": 0.2,
            "look": k,
            "max_looks": 6,
            "alpha": 0.0007,
            "t_s": t_s,
            "n_baseline": 400 * k,
            "n_candidate": 100 * k,
            "decision": decision,
            "figures": [ttft, error_rate],
            "reasons": [f"{decision}: ttft_p50"],
        }
    )


def interval(t_s: float, candidate: bool, errors: int = 0) -> VersionInterval:
    versions = {"baseline": VersionFigures(requests=160, errors=errors, ttft_p95_ms=48.0)}
    if candidate:
        versions["candidate"] = VersionFigures(requests=40, ttft_p95_ms=55.0)
    return VersionInterval(t_s=t_s, versions=versions, in_flight=16)


def aborted_canary() -> RolloutJournal:
    """A canary that held once at 20%, then aborted: the candidate shown slower."""
    return RolloutJournal(
        strategy="canary",
        steps=[0.2, 0.5, 1.0],
        final_share=0.0,
        stopped="aborted at 20%",
        moves=[
            MoveRecord(label="step to 20%", share_from=0.0, share_to=0.2, at_s=0.5),
            MoveRecord(
                label="rollback", share_from=0.2, share_to=0.0, at_s=8.2, drain_s=0.26, drained=True
            ),
        ],
        looks=[
            look(1, 4.0, "hold", figure("ttft_p50", 0.14, 0.05, 0.22, "undecided")),
            look(2, 8.0, "abort", figure("ttft_p50", 0.138, 0.106, 0.17, "worse")),
        ],
        intervals=[
            interval(float(t), candidate=t < 8, errors=2 if t == 3 else 0) for t in range(10)
        ],
    )


def report(journal: RolloutJournal | None) -> RunReport:
    return RunReport(kind="rollout", name="quick (canary)", outcome="failed", rollout=journal)


def test_the_html_shows_the_timeline_and_every_look() -> None:
    page = render_html(report(aborted_canary()))
    section = page[page.index("<h2>Rollout</h2>") :]
    assert "Stopped: aborted at 20%" in section and "not interrupted" in section
    svg = section[section.index("<svg") : section.index("</svg>")]
    # The share's step line, both versions' TTFT, the errors, the moves and the decision.
    assert "candidate share" in svg and "baseline: TTFT p95, errors" in svg
    assert "step to 20% (0.5 s)" in svg and "rollback (8.2 s)" in svg
    assert "abort at 20%, look 2/6" in svg and "2 errors of 160 requests" in svg
    looks = section[section.index("<h3>Canary looks</h3>") :]
    assert "<th>ttft_p50</th>" in looks and "<th>error_rate</th>" in looks
    assert "+13.8% <small>[+10.6%, +17.0%]</small>" in looks and ">worse</span>" in looks
    assert ">abort</td>" in looks and ">hold</td>" in looks and "1/6" in looks


def test_the_markdown_lists_the_moves_and_the_decided_looks() -> None:
    md = render_markdown(report(aborted_canary()))
    assert "## Rollout" in md and "- stopped: aborted at 20% (canary" in md
    assert "| rollback | 20% -> 0% | 8.2 s | reload | in 0.26 s |" in md
    decisions = md[md.index("## Rollout: canary decisions") :]
    assert "+13.8% [+10.6%, +17.0%] vs +10%: worse" in decisions
    assert "| abort |" in decisions and "| hold |" not in decisions


def test_an_interrupted_rollout_keeps_its_last_look() -> None:
    journal = aborted_canary()
    journal.looks = journal.looks[:1]
    journal.interrupted = True
    journal.stopped = "interrupted at 20%"
    assert decided_looks(journal.looks) == journal.looks
    md = render_markdown(report(journal))
    assert "interrupted before it finished" in md and "| hold |" in md
    assert "interrupted before it finished" in render_html(report(journal))


def test_a_blue_green_rollout_has_no_look_table() -> None:
    journal = RolloutJournal(
        strategy="blue_green",
        stopped="switched to the candidate and back",
        moves=[MoveRecord(label="switch to the candidate", share_from=0.0, share_to=1.0, at_s=3.8)],
        intervals=[interval(float(t), candidate=t >= 4) for t in range(8)],
    )
    page = render_html(report(journal))
    assert "<h2>Rollout</h2>" in page and "no errors" in page
    assert "Canary looks" not in page
    assert "canary decisions" not in render_markdown(report(journal))


def test_a_report_without_a_rollout_has_no_section() -> None:
    plain = RunReport(name="gate", outcome="passed")
    assert "<h2>Rollout</h2>" not in render_html(plain)
    assert "## Rollout" not in render_markdown(plain)
    assert svg_rollout_timeline(RolloutJournal(strategy="canary")) == ""
