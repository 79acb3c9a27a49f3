"""The NumPy backend of mlpcore, :class:`mlpcore_numpy.backend.NumpyBackend`: hand-written forward
and backward passes. Nothing is imported here, so that discovering the plugin stays cheap."""
