"""Entry-point module of the JAX backend: describes the backend without importing JAX.

mlpcore imports this module for every installed plugin when it first lists backends, so it must
import cheaply. The ``factory`` string is resolved, and JAX imported, only when the ``"jax"``
backend is first requested by name.
"""

from __future__ import annotations

from mlpcore.hookspecs import BackendEntry, hookimpl

CONTRACT_VERSION = 1
"""The mlpcore backend contract this plugin implements, stated here as a literal on purpose: a
plugin declares the version it was written against, and mlpcore refuses it if it does not support
that version. (Importing ``mlpcore.backend.CONTRACT_VERSION`` instead would always agree.)"""


@hookimpl
def mlpcore_backends() -> list[BackendEntry]:
    """One backend, ``"jax"``, needing the ``jax`` package."""
    return [
        BackendEntry(
            name="jax",
            factory="mlpcore_jax.backend:JaxBackend",
            framework="jax",
            framework_distributions=("jax",),
            install_hint="pip install mlpcore-jax (brings jax with the CPU jaxlib)",
            contract_version=CONTRACT_VERSION,
        )
    ]
