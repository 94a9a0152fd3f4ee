"""Helpers shared by end-to-end tests and benchmarks: the real bot process, seeded databases."""
