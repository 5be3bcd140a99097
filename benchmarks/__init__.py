"""Reproducible performance and search-quality benchmarks, each against a peer in the same run."""
