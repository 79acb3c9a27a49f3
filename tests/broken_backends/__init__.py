"""Deliberately broken backends: the NumPy backend with one realistic bug each.

``tests/test_conformance_suite.py`` runs the conformance suite against every one of them and
checks that the expected test catches the bug. Each module exposes a ``Backend`` class; the suite
loads it with ``--mlpcore-backend broken_backends.<module>:Backend`` (``tests/`` on ``sys.path``).

============================  ================================================================
module                        the bug
============================  ================================================================
dropout_without_rescale       dropout keeps units unscaled: ``x * m`` instead of ``x * m / (1-p)``
sigmoid_off                   the sigmoid op is off by 1e-3
relu_derivative_at_zero       relu' uses ``x >= 0``, so relu'(0) = 1
naive_softmax                 softmax cross-entropy exponentiates raw logits (no max subtracted)
weights_not_transposed        torch-style (out, in) storage read back with ``reshape``, not ``.T``
partial_write                 ``write_variables`` converts and assigns one variable at a time
one_hot_only                  cross-entropy for one-hot rows only: integer labels make it raise
============================  ================================================================

``no_capabilities`` is not broken: it declares no optional capability, so the tests gated on
capabilities must skip for it.
"""
