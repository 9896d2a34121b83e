"""Workflows: deterministic case logic. No I/O, clocks or randomness outside Temporal APIs."""
