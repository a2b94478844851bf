"""The one map from a run's outcome to the process exit code, for every command.

0 passed, 1 the gate (or an SLO) failed or a load's check ended inconclusive (an inconclusive
check has not passed), 2 could not run (bad configuration, a missing tool, a
service that did not start, an invalid load run, a crash of the harness), 130 interrupted.
"""

from __future__ import annotations

EXIT_OK, EXIT_FAIL, EXIT_CANNOT_RUN, EXIT_INTERRUPTED = 0, 1, 2, 130

EXIT_CODES: dict[str, int] = {
    "passed": EXIT_OK,
    "failed": EXIT_FAIL,
    "inconclusive": EXIT_FAIL,  # a load run whose checks could not all be decided: not passed
    "error": EXIT_CANNOT_RUN,
    "invalid": EXIT_CANNOT_RUN,
    "running": EXIT_CANNOT_RUN,  # a report that never finished: the run did not complete
    "interrupted": EXIT_INTERRUPTED,
}


def exit_code(outcome: str) -> int:
    return EXIT_CODES.get(outcome, EXIT_CANNOT_RUN)
