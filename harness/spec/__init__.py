"""Pydantic models of what a user writes: stacks, loads, experiments, gate and rollout profiles.

Nothing is re-exported here: the gateway imports `harness.spec.gateway` alone at each start, and
a package import that pulled in every spec (and the loader's dependencies) would cost it CPU."""
