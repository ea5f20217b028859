"""Developer tools: gazette fixtures, loaders and service helpers for tests, demos and benchmarks."""
