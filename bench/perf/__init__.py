"""Benchmarks of the harness's own tools (not of the networks it measures)."""
