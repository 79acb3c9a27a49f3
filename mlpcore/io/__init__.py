"""Checkpoint storage: :mod:`~mlpcore.io.checkpoint` (mlpcore's own format, a leaf),
:mod:`~mlpcore.io.interop` (every format, plugins' included, on top of it) and
:mod:`~mlpcore.io.namemap` (foreign names to canonical ones). Imports no framework."""
