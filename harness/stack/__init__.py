"""The stack under test: plan it from a spec, bring it up with a provider, tear it down."""

from harness.stack.orchestrator import scrape_beside, start_stack, wait_targets_up
from harness.stack.planner import SHAREABLE, SharedServices
from harness.stack.provider import Endpoints, RunningStack

__all__ = [
    "SHAREABLE",
    "Endpoints",
    "RunningStack",
    "SharedServices",
    "scrape_beside",
    "start_stack",
    "wait_targets_up",
]
