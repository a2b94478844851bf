"""The rollout journal in the rendered reports: the timeline, the looks, where it stopped."""

from harness.load.capacity import CapacityResult, CapacityStep
from harness.measure.timeseries import VersionFigures, VersionInterval
from harness.report.model import RunReport
from harness.report.render_html import render_html
from harness.report.render_text import render_markdown
from harness.report.rollout_figures import decided_looks, svg_rollout_timeline
from harness.report.rollout_journal import (
    MoveRecord,
    RolloutJournal,
    ScaleRecord,
    SignalRecord,
)
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


def test_a_canary_keeps_its_share_panel() -> None:
    """The share panel and the moves table as they were: no rolling or autoscaler parts."""
    svg = svg_rollout_timeline(aborted_canary())
    assert "canary rollout: candidate share, both versions per 1 s, moves and decisions" in svg
    assert "out of rotation" not in svg and "replicas in rotation" not in svg
    md = render_markdown(report(aborted_canary()))
    assert "| move | candidate share | at | mode | drained |\n" in md
    assert "| step to 20% | 0% -> 20% | 0.5 s | reload | - |" in md
    assert "scale events" not in md


def rolling_update() -> RolloutJournal:
    """Two replicas replaced in turn; the second's new server never answered a first token."""
    return RolloutJournal(
        strategy="rolling",
        steps=[0.05, 0.5, 1.0],
        final_share=1.0,
        stopped="every primary replica replaced (2)",
        moves=[
            MoveRecord(
                label="rolling update",
                at_s=2.55,
                until_s=3.23,
                mode="drain",
                drain_s=0.21,
                drained=True,
                figures={"cold_start_s": 0.15, "out_of_rotation_s": 0.68},
            ),
            MoveRecord(
                label="rolling update: primary-2 replaced",
                at_s=4.23,
                until_s=4.92,
                mode="drain",
                drain_s=0.21,
                drained=True,
                figures={"cold_start_s": None, "out_of_rotation_s": 0.69},
            ),
        ],
        intervals=[
            VersionInterval(
                t_s=float(t),
                versions={"none": VersionFigures(requests=110, ttft_p95_ms=45.0)},
                in_flight=12,
            )
            for t in range(8)
        ],
    )


def test_a_rolling_update_shades_each_replica_out_of_rotation() -> None:
    page = render_html(report(rolling_update()))
    section = page[page.index("<h2>Rollout</h2>") :]
    svg = section[section.index("<svg") : section.index("</svg>")]
    # Its own panel instead of a share no move changed; the requests carry no version.
    assert "rolling rollout: replicas out of rotation" in svg and "candidate share" not in svg
    assert "all requests: TTFT p95, errors" in svg
    # A span per replica, named by its label or its place, with its cold start.
    assert "replica 1, cold start 0.15 s" in svg and "primary-2, cold start no first token" in svg
    assert "out of rotation 2.55-3.23 s (0.68 s); drained in 0.21 s" in svg
    assert svg.count('fill-opacity="0.3"') == 2
    moves = section[section.index("<h3>Traffic moves</h3>") :]
    assert "<th>change</th>" in moves and "<th>cold start</th>" in moves
    assert "<td>rolling update: replica 1</td><td>replica replaced</td>" in moves
    assert "<td>2.5 -&gt; 3.2 s</td>" in moves and "<td>no first token</td>" in moves
    assert "Scale events" not in section
    # The canary's steps and share say nothing of a rolling update.
    assert "steps 5%" not in section and "2 replicas taken out in turn" in section
    md = render_markdown(report(rolling_update()))
    assert (
        "| rolling update: replica 1 | replica replaced | 2.5 -> 3.2 s | drain | in 0.21 s |" in md
    )
    assert "| cold start |" in md and "| 0.15 s |" in md


def scale_out() -> RolloutJournal:
    """The autoscaler under a burst: primary-2 added (ready, in rotation, serving), later
    removed; primary-3 decided but never ready before the load ended."""
    replicas = [1] * 6 + [2] * 10 + [1] * 4
    return RolloutJournal(
        strategy="scale_out",
        stopped="load ended",
        target_rps_per_replica=8.0,
        signal=[
            SignalRecord(
                t_s=float(t),
                per_replica_rps=None if t == 0 else 12.0 if 3 <= t < 12 else 4.0,
                replicas=n,
            )
            for t, n in enumerate(replicas)
        ],
        scale_events=[
            ScaleRecord(
                kind="out",
                replica="primary-2",
                replicas_after=2,
                crossed_s=3.0,
                decided_s=4.1,
                ready_s=5.3,
                in_rotation_s=5.6,
                serving_s=5.9,
            ),
            ScaleRecord(kind="out", replica="primary-3", replicas_after=3, decided_s=11.0),
            ScaleRecord(kind="in", replica="primary-2", replicas_after=1, decided_s=16.0),
        ],
        moves=[
            MoveRecord(label="scale-in", at_s=16.0, until_s=16.4, mode="drain", drain_s=0.3),
        ],
        intervals=[
            VersionInterval(
                t_s=float(t),
                versions={"none": VersionFigures(requests=100, ttft_p95_ms=60.0)},
                in_flight=10,
            )
            for t in range(20)
        ],
    )


def test_a_scale_out_shows_the_replicas_the_signal_and_each_event() -> None:
    page = render_html(report(scale_out()))
    section = page[page.index("<h2>Rollout</h2>") :]
    svg = section[section.index("<svg") : section.index("</svg>")]
    assert "candidate share" not in svg and "replicas in rotation" in svg
    assert "target 8 req/s per replica" in svg and 'stroke-dasharray="5,4"' in svg
    # A mark per event, not one more for the scale-in's move.
    assert "+primary-2 (4.1 s)" in svg and "+primary-3 (11.0 s)" in svg
    assert "-primary-2 (16.0 s)" in svg and "scale-in (16.0 s)" not in svg
    assert "primary-2 ready at 5.30 s, 1.20 s after the decision" in svg
    assert "primary-2 serving at 5.90 s, 1.80 s after the decision" in svg
    events = section[section.index("<h3>Scale events</h3>") :]
    assert "<th>crossed -&gt; decided</th>" in events and "<th>replicas after</th>" in events
    assert (
        "<td>primary-2</td><td>out (added)</td><td>4.1 s</td><td>1.10 s</td><td>1.20 s</td>"
        "<td>0.30 s</td><td>0.30 s</td><td>2</td>"
    ) in events
    assert (
        "<td>primary-3</td><td>out (added)</td><td>11.0 s</td><td>-</td><td>not reached</td>"
        in (events)
    )
    assert "<td>replica removed</td>" in section
    assert "2 replicas added, 1 removed, 1 in rotation at the end" in section
    md = render_markdown(report(scale_out()))
    table = md[md.index("## Rollout: scale events") :]
    assert "| replica | kind | decided at | crossed -> decided | decided -> ready |" in table
    assert "| primary-2 | out (added) | 4.1 s | 1.10 s | 1.20 s | 0.30 s | 0.30 s | 2 |" in table
    assert "| primary-2 | in (removed) | 16.0 s | - | - | - | - | 1 |" in table


def test_a_target_from_capacity_is_said_and_its_search_shown() -> None:
    steps = [
        CapacityStep(rate_rps=10, outcome="passed", reasons=[], ttft_p95_ms=147.0),
        CapacityStep(rate_rps=15, outcome="failed", reasons=["ttft_p95_ms = 995 violates <= 500"]),
    ]
    capacity = CapacityResult(
        slos=["ttft_p95_ms<=500"],
        capacity_rps=10,
        bounded_by="slo",
        explanation="capacity between 10 and 15 req/s",
        steps=steps,
    )
    basis = "target 7 req/s per replica: 70% of 10 req/s, the highest rate ..."
    journal = scale_out().model_copy(
        update={"target_rps_per_replica": 7.0, "target_basis": basis, "capacity": capacity}
    )
    section = render_html(report(journal))
    section = section[section.index("<h2>Rollout</h2>") :]
    assert "target 7 req/s per replica (from one replica&#x27;s measured capacity)" in section
    table = section[section.index("<h3>Target from capacity</h3>") :]
    assert "<td>10 req/s</td><td>passed</td><td>147 ms</td>" in table
    assert "ttft_p95_ms = 995 violates &lt;= 500" in table
    md = render_markdown(report(journal))
    assert f"- {basis}" in md
    assert "| 15 req/s | failed | - | - | - | ttft_p95_ms = 995 violates <= 500 |" in md


def test_a_latency_figure_not_judged_says_so() -> None:
    unjudged = figure("ttft_p50", 0.02, -0.4, 0.5, "undecided").model_copy(update={"judged": False})
    journal = aborted_canary().model_copy(update={"looks": [look(1, 4.0, "promote", unjudged)]})
    md = render_markdown(report(journal))
    assert "+2.0% [-40.0%, +50.0%] vs +10%: undecided (not judged)" in md
