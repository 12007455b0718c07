"""Reference implementations the tests and benchmarks hold the library against (not used by any stage)."""
