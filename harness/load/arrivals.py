"""Open-loop arrival schedules: intended send times (seconds from the run start) for one worker.

Global arrival i of a constant schedule falls where the cumulative rate reaches i; a burst puts
`burst_size` consecutive arrivals at one instant. Worker k of N takes the arrivals i = k (mod N), so
N workers together keep the exact global schedule. Poisson workers draw independent exponential
gaps at 1/N of the intensity each: the superposition is Poisson at the full rate.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

from harness.load.profile import Profile
from harness.spec.load import OpenLoop


def arrival_offsets(
    model: OpenLoop, profile: Profile, worker: int, workers: int, seed: int
) -> Iterator[float]:
    """Yield this worker's intended send offsets in order, until the profile ends."""
    if not 0 <= worker < workers:
        raise ValueError(f"worker index {worker} not in [0, {workers})")
    end = profile.duration_s
    if model.arrival == "poisson":
        rng = random.Random(f"{seed}:{worker}:arrivals")
        x = 0.0
        while True:
            x += rng.expovariate(1.0) * workers
            t = profile.time_of(x)
            if t is None or t >= end:
                return
            yield t
    burst = model.burst_size if model.arrival == "burst" else 1
    i = worker
    while True:
        t = profile.time_of(float(burst * (i // burst)))
        if t is None or t >= end:
            return
        yield t
        i += workers
