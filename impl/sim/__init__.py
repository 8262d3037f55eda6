"""Deterministic simulator: one seed, one schedule, one run."""
