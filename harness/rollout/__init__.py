"""A rollout: the baseline and the candidate side by side, traffic moved between them."""
