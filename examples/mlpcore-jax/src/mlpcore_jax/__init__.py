"""mlpcore-jax: a third-party JAX backend for mlpcore.

Nothing is imported here: the ``mlpcore`` entry point names :mod:`mlpcore_jax.plugin`, which mlpcore
imports at discovery, and JAX itself is imported only when a user first asks for the ``"jax"``
backend (through :mod:`mlpcore_jax.backend`).
"""
