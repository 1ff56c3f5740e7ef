"""One module per metric: pure math first, then its sampler."""
