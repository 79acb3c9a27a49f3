"""mlpcore's definition of a correct backend: tolerances (and, as it grows, the test suite)."""
