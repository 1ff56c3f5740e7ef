"""Metrics, one module each: pure math first, then the sampler that feeds it."""
