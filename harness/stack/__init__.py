"""The stack under test: plan it from a spec, bring it up with a provider, tear it down."""

from harness.stack.orchestrator import start_stack, wait_targets_up
from harness.stack.provider import Endpoints, RunningStack

__all__ = ["Endpoints", "RunningStack", "start_stack", "wait_targets_up"]
