"""Reproduction snippets: the Python a failure message shows so a backend author can re-run it.

A :class:`Repro` knows how to get the backend under test (``mlpcore.get_backend('torch')``, or the
import of a ``module:factory``); calling it with code lines and named values gives a
:class:`Snippet`, which formats itself (values as exact literals) only when printed, so a passing
comparison pays nothing for it::

    repro = Repro(setup_lines("numpy"))
    print(repro("got = backend.activations.value('relu', x)", x=np.zeros(3, np.float32)))

A test makes its snippet *before* it calls the backend: the session is told of every snippet
(``note``) and prints the test's last one when the test fails without showing it, e.g. because
the backend raised.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Code", "Repro", "Snippet", "literal", "setup_lines"]

PREAMBLE = (
    "import numpy as np",
    "import mlpcore",
    "from mlpcore import L1, L2, SGD, GlorotUniform, MLPSpec, Normal, TruncatedNormal, Zeros",
    "from mlpcore.backend import TrainingConfig",
    "from mlpcore_conformance import cases, reference",
)


@dataclass(frozen=True)
class Code:
    """A Python expression inserted verbatim, for values too large to print as literals."""

    text: str

    def __repr__(self) -> str:
        return self.text


def _number(value: float) -> str:
    if math.isnan(value):
        return "np.nan"
    if math.isinf(value):
        return "np.inf" if value > 0 else "-np.inf"
    return repr(value)


def _nested(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_nested(v) for v in value) + "]"
    if isinstance(value, float):
        return _number(value)
    return repr(value)


def literal(value: Any) -> str:
    """Python source that evaluates to ``value`` exactly (arrays bit for bit, NaN and ±inf
    included, given ``import numpy as np``)."""
    if isinstance(value, Code):
        return value.text
    if isinstance(value, np.ndarray):
        body = _nested(value.tolist())
        if value.dtype == np.bool_:
            return f"np.array({body}, dtype=bool)"
        if value.size == 0:
            return f"np.zeros({value.shape!r}, dtype={str(value.dtype)!r})"
        return f"np.array({body}, dtype={str(value.dtype)!r})"
    if isinstance(value, np.generic):
        return f"np.{value.dtype}({_number(float(value))})" if value.dtype.kind == "f" \
            else repr(value.item())
    if isinstance(value, float):
        return _number(value)
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k!r}: {literal(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(literal(v) for v in value) + "]"
    if isinstance(value, tuple):
        inner = ", ".join(literal(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    return repr(value)


@dataclass(frozen=True)
class Snippet:
    """Code that reproduces one comparison; formatted when converted to ``str``."""

    setup: tuple[str, ...]
    values: tuple[tuple[str, Any], ...]
    lines: tuple[str, ...]

    def __str__(self) -> str:
        body = [*PREAMBLE, *self.setup]
        body += [f"{name} = {literal(value)}" for name, value in self.values]
        body += list(self.lines)
        return "\n".join(body)


def setup_lines(spec: str, attribute_is_factory: bool = True,
                variable: str = "backend") -> tuple[str, ...]:
    """Code assigning the backend named by ``spec`` to ``variable``: a registered name
    (``"torch"``) or a ``"module:attribute"`` reference (a factory, or the backend itself)."""
    module, colon, attribute = spec.partition(":")
    if not colon:
        return (f"{variable} = mlpcore.get_backend({spec!r})",)
    if attribute_is_factory:
        return (f"from {module} import {attribute}", f"{variable} = {attribute}()")
    return (f"from {module} import {attribute} as {variable}",)


class Repro:
    """Makes :class:`Snippet` objects that start with ``setup`` (getting the backend), and
    hands each one to ``note``."""

    def __init__(self, setup: tuple[str, ...] = ("backend = mlpcore.get_backend()",),
                 note: Callable[[Snippet], None] | None = None) -> None:
        self.setup, self.note = setup, note

    def __repr__(self) -> str:
        return f"Repro({self.setup!r})"

    def __call__(self, *lines: str, **values: Any) -> Snippet:
        """A snippet assigning ``values`` (as literals) and then running ``lines``."""
        snippet = Snippet(self.setup, tuple(values.items()), lines)
        if self.note is not None:
            self.note(snippet)
        return snippet
