"""The simulated stack the fuzz tests send their many requests to: the per-key rate limit lifted,
so every case meets the gateway's validation, not its limiter."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from harness.spec.loader import load_yaml_model
from harness.spec.stack import StackSpec
from harness.stack import RunningStack, start_stack

SIM_STACK = Path(__file__).parents[1] / "fixtures" / "sim-stack.yaml"


@contextmanager
def fuzz_stack(run_dir: Path) -> Iterator[RunningStack]:
    spec = load_yaml_model(StackSpec, SIM_STACK).model_dump(mode="json")
    spec["gateway"]["settings"]["rate_limit"] = {"requests_per_minute": 100_000}
    with start_stack(
        StackSpec.model_validate(spec), run_dir=run_dir, wait_for_scrapes=False
    ) as running:
        yield running
