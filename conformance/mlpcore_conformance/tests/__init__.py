"""The conformance tests, one module per concept of the contracts."""
