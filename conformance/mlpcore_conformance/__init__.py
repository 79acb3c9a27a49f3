"""mlpcore's definition of a correct backend: a pytest plugin and the suite it runs.

Run it with ``pytest --pyargs mlpcore_conformance --mlpcore-backend NAME`` or
``mlpcore conformance --backend NAME`` (see ``docs/conformance.md``). Modules:

- :mod:`~mlpcore_conformance.plugin`: the ``pytest11`` entry point, inert unless asked;
- :mod:`~mlpcore_conformance.session`: an active run (backends, xfails, skips, report);
- :mod:`~mlpcore_conformance.reference`: the independent float64 NumPy reference;
- :mod:`~mlpcore_conformance.tolerances`: the (op, dtype) tolerance table and ``assert_close``;
- :mod:`~mlpcore_conformance.strategies`: every Hypothesis strategy and setting;
- :mod:`~mlpcore_conformance.cases`, :mod:`~mlpcore_conformance.repro`: fixed test data and the
  reproduction snippets of failure messages;
- :mod:`~mlpcore_conformance.xfails`, :mod:`~mlpcore_conformance.report`: known failures and the
  JSON/Markdown report;
- ``mlpcore_conformance.tests``: the tests, one module per concept.

Importing this package imports nothing. PYTEST_DONT_REWRITE: ``mlpcore conformance`` imports it
(and :mod:`~mlpcore_conformance.plugin`) before pytest starts; neither has asserts to rewrite.
"""
