"""The NumPy backend of mlpcore: hand-written forward and backward passes, no autodiff.

Nothing is imported here, so that discovering the plugin (``mlpcore_numpy.plugin``) stays cheap;
the backend itself is :class:`mlpcore_numpy.backend.NumpyBackend`.
"""
