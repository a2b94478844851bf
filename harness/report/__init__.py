"""The run report: one model, several renderings (JSON, JUnit XML, Markdown summary, HTML)."""

from harness.report.model import RunOutcome, RunReport
from harness.report.write import write_reports

__all__ = ["RunOutcome", "RunReport", "write_reports"]
