"""Benchmarks for the budgets in DESIGN.md (`make bench`); never part of the test run."""
