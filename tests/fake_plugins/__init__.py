"""Small fake backend plugins for tests/test_registry.py, one failure mode per module.

Each module is named by an ``importlib.metadata.EntryPoint`` in the test, exactly as an installed
plugin would be. They import nothing heavy at module level, like a real plugin must.
"""
