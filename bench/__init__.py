"""Benchmarks (`make bench`): outside the product and outside the test run."""
