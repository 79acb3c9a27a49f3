"""The shared base of the built-in backends: what every framework does alike, written once.

As Keras 3's ``keras/src/backend/common``: the framework-neutral logic lives here and imports no
framework; a backend folder holds only what differs. :class:`Table` maps the contract's names to a
framework's functions and refuses any other name; :class:`ModelBase`, :class:`TrainerBase` and
:class:`BackendBase` hold the variables, the training plumbing and the backend object; an autodiff
framework supplies :class:`AutodiffOps`, on which :class:`AutodiffModel` and
:class:`AutodiffBackend` build everything else. Inheriting is optional: the Protocols of
:mod:`mlpcore.backend` are the contract, and a backend written against them alone works the same.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any, ClassVar, Generic, Protocol, TypeVar

import numpy as np
import numpy.typing as npt

from mlpcore.activations import ACTIVATIONS, ActivationName, ActivationOps
from mlpcore.backend import CONTRACT_VERSION, Trainer, TrainingConfig, batch_blocks
from mlpcore.dropout import DropoutOps, check_rate, keep_scale, portable_keep_mask
from mlpcore.losses import LOSSES, LossName, LossOps, check_loss
from mlpcore.regularisers import REGULARISERS, Regulariser, RegulariserOps
from mlpcore.spec import DTypeName, MLPSpec

__all__ = [
    "Activations", "AutodiffBackend", "AutodiffModel", "AutodiffOps", "BackendBase", "Dropout",
    "Losses", "ModelBase", "Network", "Objective", "Penalty", "Regularisers", "Table",
    "TrainerBase", "dropout_widths", "floating", "interleave", "labels", "network", "penalties",
    "scaled_mask",
]

F = TypeVar("F")
Native = Any
"""A framework's array (a NumPy array, a ``torch.Tensor``, a ``tf.Tensor``, a ``jax.Array``)."""
FloatArray = npt.NDArray[np.floating]
BoolArray = npt.NDArray[np.bool_]
Terms = tuple[tuple[float, Callable[[Native], Native]], ...]
"""``(λ, term)`` per regulariser: its penalty is ``λ Σ_i term(W_i)``."""

_NAMES = {"activation": ACTIVATIONS, "loss": LOSSES, "regulariser": REGULARISERS}


class Table(dict[str, F], Generic[F]):
    """A framework's function for each name of one contract (``what``: ``"activation"``,
    ``"loss"`` or ``"regulariser"``), exactly those names. Looking up any other name raises
    ``ValueError`` naming it and the choices: there is no fallback."""

    def __init__(self, what: str, entries: Mapping[str, F]) -> None:
        if set(entries) != set(_NAMES[what]):
            raise ValueError(f"a {what} table needs exactly {', '.join(_NAMES[what])}, "
                             f"got {', '.join(entries)}")
        super().__init__(entries)
        self.what = what

    def __missing__(self, name: str) -> F:
        raise ValueError(f"unknown {self.what} {name!r}; choose one of {', '.join(self)}")


_KINDS: Table[None] = Table("regulariser", dict.fromkeys(REGULARISERS))


def interleave(weights: Sequence[Native], biases: Sequence[Native]) -> list[Native]:
    """``[W_0, b_0, W_1, b_1, ...]``, the order of :meth:`MLPSpec.variable_shapes`."""
    return [v for pair in zip(weights, biases, strict=True) for v in pair]


def dropout_widths(spec: MLPSpec) -> tuple[int, ...]:
    """The widths of the hidden layers dropout follows; none when ``spec.dropout`` is 0."""
    return spec.sizes[1:-1] if spec.dropout > 0.0 else ()


def scaled_mask(keep: BoolArray, rate: float, dtype: npt.DTypeLike) -> FloatArray:
    """``keep · keep_scale(rate)`` in ``dtype``, the scale rounded to ``dtype`` first: what a
    kept unit is multiplied by, the same values on every backend."""
    scaled: FloatArray = keep.astype(dtype) * np.asarray(keep_scale(rate), dtype)
    return scaled


def floating(x: Any) -> FloatArray:
    """``x`` as a NumPy array; ``TypeError`` unless its dtype is floating-point."""
    array = np.asarray(x)
    if array.dtype.kind != "f":
        raise TypeError(f"expected a floating-point array, got dtype {array.dtype}")
    return array


def labels(targets: Any, dtype: npt.DTypeLike) -> npt.NDArray[Any]:
    """Targets as backends take them: integer labels as int64, float targets in ``dtype``."""
    array = np.asarray(targets)
    return array.astype(dtype if array.dtype.kind == "f" else np.int64, copy=False)


def penalties(table: Table[F], regularisers: Sequence[Regulariser]) -> tuple[tuple[float, F], ...]:
    """``(λ, table[kind])`` for every regulariser: an unknown kind is refused here, once."""
    return tuple((r.strength, table[r.kind]) for r in regularisers)


@dataclass(frozen=True)
class Penalty:
    """``Σ_(λ, term) λ Σ_i term(W_i)`` over the weight matrices (0 without terms), hashable."""

    terms: Terms = ()

    def __call__(self, *weights: Native) -> Native:
        return sum((strength * term(w) for strength, term in self.terms for w in weights), 0)


@dataclass(frozen=True)
class Network:
    """The MLP as functions of one framework's arrays, for backends whose gradients are autodiff's.

    For a batch ``a_0 = x`` (N, d_0), with weights in the backend's own layout::

        z_i = dense(a_i, W_i, b_i);   a_{i+1} = f(z_i) · s_i     hidden layers; s_i a scaled mask
        logits = z_{L-1}                                           (N, K): a linear output layer
        objective = loss(logits, targets) + penalty(W_0, …, W_{L-1})

    Frozen and hashable, so a JIT can take it as a static argument; :func:`network` builds it.
    """

    dense: Callable[[Native, Native, Native], Native]
    activation: Callable[[Native], Native]
    loss: Callable[[Native, Native], Native] | None = None
    penalty: Penalty = Penalty()

    def forward(self, weights: Sequence[Native], biases: Sequence[Native], x: Native,
                masks: Sequence[Native] = ()) -> Native:
        """Logits (N, K); ``masks``: one scaled mask per hidden layer, or none in eval mode."""
        a = x
        for i in range(len(weights) - 1):
            a = self.activation(self.dense(a, weights[i], biases[i]))
            if masks:
                a = a * masks[i]
        return self.dense(a, weights[-1], biases[-1])

    def objective(self, weights: Sequence[Native], biases: Sequence[Native], x: Native,
                  targets: Native, masks: Sequence[Native] = ()) -> Native:
        """Batch-mean loss plus every penalty over the weight matrices, a scalar."""
        assert self.loss is not None, "a network built without a loss"
        value = self.loss(self.forward(weights, biases, x, masks), targets)
        return value + self.penalty(*weights) if self.penalty.terms else value


@dataclass(frozen=True)
class Objective:
    """``net``'s objective as a hashable function of the flat arrays
    ``(W_0, b_0, …, W_{L-1}, b_{L-1}, x, targets, *masks)``, ``L = layers``."""

    net: Network
    layers: int

    def __call__(self, *args: Native) -> Native:
        k = 2 * self.layers
        return self.net.objective(args[0:k:2], args[1:k:2], args[k], args[k + 1], args[k + 2:])


def network(ops: AutodiffOps, activation: str, loss: str | None = None,
            regularisers: Sequence[Regulariser] = ()) -> Network:
    """The :class:`Network` of ``ops`` for these names; an unknown name raises ``ValueError``."""
    return Network(ops.dense, ops.activations[activation],
                   None if loss is None else ops.losses[loss],
                   Penalty(penalties(ops.penalties, regularisers)))


class AutodiffOps(Protocol):
    """What an autodiff framework supplies, once, in its backend's ``ops.py``.

    ``activations[name](z)``; ``losses[name](outputs, targets)``, the batch mean, targets int64
    labels (N,) or floats (N, K) in the outputs' dtype; ``penalties[kind](W)`` before ``λ``:
    ``l2`` is ``Σ W² / 2``, ``l1`` is ``Σ |W|`` (whose gradient at 0 must be ``sign(0) = 0``).
    """

    activations: Table[Callable[[Native], Native]]
    losses: Table[Callable[[Native, Native], Native]]
    penalties: Table[Callable[[Native], Native]]

    def dense(self, a: Native, w: Native, b: Native) -> Native:
        """``a W + b`` for ``W`` in the backend's own layout."""

    def tensor(self, array: npt.NDArray[Any]) -> Native:
        """A native array with ``array``'s values, dtype and shape."""

    def numpy(self, value: Native) -> npt.NDArray[Any]:
        """A NumPy array with ``value``'s values, dtype and shape, sharing no caller's memory."""

    def gradients(self, fn: Callable[..., Native], args: Sequence[Native],
                  n: int) -> tuple[Native, list[Native]]:
        """``fn(*args)`` and the gradient of the sum of its entries with respect to each of the
        first ``n`` args. ``fn`` is hashable and the same object for the same function (a table
        entry, a :class:`Penalty`, an :class:`Objective`), so a framework may cache by it."""

    def keep_mask(self, seed: int, shape: tuple[int, ...], rate: float) -> Native:
        """A bool keep-mask from the framework's RNG keyed by ``seed``: ``u >= float32(p)``."""

    def dropout(self, x: Native, keep: Native, rate: float) -> Native:
        """``where(keep, x · keep_scale(rate), 0)``, the scale in ``x``'s dtype: a dropped
        entry is exactly 0 even where ``x`` is infinite or NaN."""


class ModelBase:
    """:class:`~mlpcore.backend.BackendModel` over variables held as a framework's arrays.

    ``_weights[i]`` and ``_biases[i]`` hold layer ``i`` (in the layout of the subclass, which
    converts one array each way: :meth:`_native`, :meth:`_canonical`). A subclass supplies the
    eval-mode forward pass of one block of rows, the objective's gradients and its trainer.
    """

    training_methods: ClassVar[tuple[str, ...]]
    forward_rows: ClassVar[int] = 8192
    """Rows per forward-pass block, bounding the memory of :meth:`forward` on a large dataset."""

    def __init__(self, spec: MLPSpec, variables: Mapping[str, FloatArray], dtype: DTypeName):
        self.spec = spec
        self.dtype: DTypeName = dtype
        self._weights, self._biases = self._convert(variables)

    def _native(self, array: FloatArray) -> Native:
        """A new native array (never a view) of a canonical one in the model dtype."""
        return np.array(array, order="C")

    def _canonical(self, value: Native) -> FloatArray:
        """A new C-contiguous NumPy array in canonical layout from a native one."""
        return np.array(value, order="C")

    def _assign(self, weights: list[Native], biases: list[Native]) -> None:
        """Make these the variables: copied in place, so a running trainer sees them."""
        for target, source in zip(self._weights + self._biases, weights + biases, strict=True):
            target[...] = source

    def _forward(self, x: FloatArray) -> FloatArray:
        """Eval-mode logits of one block of rows."""
        raise NotImplementedError

    def _gradients(self, x: FloatArray, targets: npt.NDArray[Any], loss: LossName,
                   regularisers: Sequence[Regulariser],
                   masks: Sequence[BoolArray]) -> tuple[float, list[Native]]:
        """The objective and its native gradients in :func:`interleave` order; ``masks`` as in
        :meth:`loss_and_gradients`, empty for eval mode."""
        raise NotImplementedError

    def _trainer(self, config: TrainingConfig, x: FloatArray,
                 targets: npt.NDArray[Any]) -> Trainer:
        raise NotImplementedError

    def _convert(self, values: Mapping[str, Any]) -> tuple[list[Native], list[Native]]:
        """Every value converted, or ``ValueError`` and none: a write is all-or-nothing."""
        shapes = self.spec.variable_shapes()
        wrong = [f"variable {name!r} has shape {np.shape(values[name])}, expected {shape}"
                 for name, shape in shapes.items() if np.shape(values[name]) != shape]
        if wrong:
            raise ValueError("; ".join(wrong))
        arrays = [self._native(np.asarray(values[name], dtype=self.dtype)) for name in shapes]
        return arrays[0::2], arrays[1::2]

    def read_variables(self) -> dict[str, FloatArray]:
        return {name: self._canonical(value) for name, value in
                zip(self.spec.variable_shapes(), interleave(self._weights, self._biases),
                    strict=True)}

    def write_variables(self, values: Mapping[str, FloatArray]) -> None:
        self._assign(*self._convert(values))

    def forward(self, x: FloatArray) -> FloatArray:
        x = np.asarray(x, dtype=self.dtype)
        out = np.empty((x.shape[0], self.spec.n_outputs), self.dtype)
        for start in range(0, x.shape[0], self.forward_rows):
            out[start:start + self.forward_rows] = self._forward(
                x[start:start + self.forward_rows])
        return out

    def loss_and_gradients(self, x: FloatArray, targets: npt.NDArray[Any], loss: LossName,
                           regularisers: Sequence[Regulariser] = (),
                           keep_masks: Sequence[BoolArray] | None = None,
                           ) -> tuple[float, dict[str, FloatArray]]:
        masks = [] if keep_masks is None or not dropout_widths(self.spec) else list(keep_masks)
        value, grads = self._gradients(np.asarray(x, dtype=self.dtype),
                                       labels(targets, self.dtype), loss, tuple(regularisers),
                                       masks)
        return value, {name: self._canonical(g)
                       for name, g in zip(self.spec.variable_shapes(), grads, strict=True)}

    def start_training(self, config: TrainingConfig, x: FloatArray,
                       targets: npt.NDArray[Any]) -> Trainer:
        if config.method is not None and config.method not in self.training_methods:
            raise ValueError(f"this model trains with method "
                             f"{' or '.join(map(repr, self.training_methods))}, "
                             f"not {config.method!r}")
        check_loss(config.loss)  # unknown names are refused here, before any trainer is built
        penalties(_KINDS, config.regularisers)
        return self._trainer(config, np.ascontiguousarray(x, dtype=self.dtype),
                             np.ascontiguousarray(labels(targets, self.dtype)))


class TrainerBase:
    """:class:`~mlpcore.backend.Trainer` plumbing: :meth:`run` checks the rows and runs them as
    at most two rectangular blocks (:func:`~mlpcore.backend.batch_blocks`), each by the
    subclass's :meth:`_block`. ``dropout`` is ``"off"`` (no hidden layer or rate 0),
    ``"portable"`` or ``"native"``."""

    def __init__(self, spec: MLPSpec, config: TrainingConfig, n_rows: int) -> None:
        self.spec, self.config, self.n_rows = spec, config, n_rows
        self.widths = dropout_widths(spec)
        self.dropout = config.dropout_mode if self.widths else "off"

    def run(self, order: npt.NDArray[np.int64], batch_size: int,
            first_step: int) -> npt.NDArray[np.float64]:
        order = np.asarray(order, dtype=np.int64)
        if len(order) and (order.min() < 0 or order.max() >= self.n_rows):
            raise IndexError(f"order holds row indices outside 0..{self.n_rows - 1}: "
                             f"{int(order.min())}..{int(order.max())}")
        parts = [self._block(rows, step)
                 for rows, step in batch_blocks(order, batch_size, first_step)]
        return np.concatenate(parts) if parts else np.empty(0, np.float64)

    def _block(self, rows: npt.NDArray[np.int64], first_step: int) -> npt.NDArray[np.float64]:
        """Run ``rows.shape[0]`` steps, step ``j`` on rows ``rows[j]``, numbered
        ``first_step + j``; their objectives (before each update) as float64."""
        raise NotImplementedError

    def step_masks(self, step: int, n: int) -> list[BoolArray]:
        """The portable keep-masks of step ``step``: one bool (n, d_l) per hidden layer."""
        return [portable_keep_mask(self.config.seed, step, layer, (n, width), self.spec.dropout)
                for layer, width in enumerate(self.widths)]

    def block_masks(self, first_step: int, n_steps: int, batch: int,
                    capacity: int = 0) -> list[BoolArray]:
        """The portable keep-masks of ``n_steps`` steps from ``first_step``: one bool
        (max(capacity, n_steps), batch, d_l) array per hidden layer, rows past ``n_steps`` False."""
        blocks = [np.zeros((max(capacity, n_steps), batch, w), bool) for w in self.widths]
        for j in range(n_steps):
            for block, mask in zip(blocks, self.step_masks(first_step + j, batch), strict=True):
                block[j] = mask
        return blocks


class BackendBase:
    """:class:`~mlpcore.backend.Backend` boilerplate. A subclass sets ``name``, ``capabilities``,
    ``framework`` (the framework's module), ``model`` (its :class:`ModelBase`), the model's
    ``training_methods`` and the four ops objects."""

    name: str
    contract_version: int = CONTRACT_VERSION
    capabilities: frozenset[str] = frozenset()
    training_methods: tuple[str, ...]
    framework: ModuleType
    model: ClassVar[type[ModelBase]]
    activations: ActivationOps
    losses: LossOps
    regularisers: RegulariserOps
    dropout: DropoutOps

    def framework_version(self) -> str:
        return str(self.framework.__version__)

    def build(self, spec: MLPSpec, variables: Mapping[str, FloatArray],
              dtype: DTypeName) -> ModelBase:
        return self.model(spec, variables, dtype)

    def __repr__(self) -> str:
        return (f"<mlpcore backend {self.name!r} "
                f"({self.framework.__name__} {self.framework_version()})>")


class AutodiffModel(ModelBase):
    """A model whose forward pass and gradients are its :class:`Network`'s, through ``ops``."""

    ops: ClassVar[AutodiffOps]

    def _forward(self, x: FloatArray) -> FloatArray:
        net = network(self.ops, self.spec.activation)
        return self.ops.numpy(net.forward(self._weights, self._biases, self.ops.tensor(x)))

    def _gradients(self, x: FloatArray, targets: npt.NDArray[Any], loss: LossName,
                   regularisers: Sequence[Regulariser],
                   masks: Sequence[BoolArray]) -> tuple[float, list[Native]]:
        objective = Objective(network(self.ops, self.spec.activation, loss, regularisers),
                              self.spec.n_layers)
        params = interleave(self._weights, self._biases)
        data = [x, targets, *(scaled_mask(m, self.spec.dropout, self.dtype) for m in masks)]
        value, grads = self.ops.gradients(objective, [*params, *map(self.ops.tensor, data)],
                                          len(params))
        return float(value), grads


class _Through:
    """An ops object of the contract that works through an :class:`AutodiffOps`."""

    def __init__(self, ops: AutodiffOps) -> None:
        self.ops = ops


class Activations(_Through):
    """:class:`~mlpcore.activations.ActivationOps` through ``ops``: ``f'(x)`` is the gradient
    of ``Σ f(x)``, as ``f`` is element-wise."""

    def value(self, name: ActivationName, x: FloatArray) -> FloatArray:
        return self.ops.numpy(self.ops.activations[name](self.ops.tensor(floating(x))))

    def derivative(self, name: ActivationName, x: FloatArray) -> FloatArray:
        f = self.ops.activations[name]
        return self.ops.numpy(self.ops.gradients(f, [self.ops.tensor(floating(x))], 1)[1][0])


class Losses(_Through):
    """:class:`~mlpcore.losses.LossOps` through ``ops``, gradients by its autodiff."""

    def value(self, name: LossName, outputs: FloatArray, targets: npt.NDArray[Any]) -> float:
        z = np.asarray(outputs)
        return float(self.ops.losses[name](self.ops.tensor(z),
                                           self.ops.tensor(labels(targets, z.dtype))))

    def gradient(self, name: LossName, outputs: FloatArray,
                 targets: npt.NDArray[Any]) -> FloatArray:
        loss, z = self.ops.losses[name], np.asarray(outputs)
        args = [self.ops.tensor(z), self.ops.tensor(labels(targets, z.dtype))]
        return self.ops.numpy(self.ops.gradients(loss, args, 1)[1][0])


class Regularisers(_Through):
    """:class:`~mlpcore.regularisers.RegulariserOps` through ``ops``, gradients by autodiff."""

    def value(self, regulariser: Regulariser, weights: Sequence[FloatArray]) -> float:
        fn = Penalty(penalties(self.ops.penalties, (regulariser,)))
        return float(fn(*(self.ops.tensor(np.asarray(w)) for w in weights)))

    def gradient(self, regulariser: Regulariser,
                 weights: Sequence[FloatArray]) -> list[FloatArray]:
        fn = Penalty(penalties(self.ops.penalties, (regulariser,)))
        if not weights:
            return []
        ws = [self.ops.tensor(np.asarray(w)) for w in weights]
        return [self.ops.numpy(g) for g in self.ops.gradients(fn, ws, len(ws))[1]]


class Dropout(_Through):
    """:class:`~mlpcore.dropout.DropoutOps` through ``ops``; without a mask it draws one from
    the framework's RNG keyed by ``seed``."""

    def apply(self, x: FloatArray, rate: float, *, training: bool,
              keep_mask: BoolArray | None = None, seed: int = 0) -> FloatArray:
        rate = check_rate(rate)
        array = np.asarray(x)
        if not training or rate == 0.0:
            return array.copy()
        keep = (self.ops.keep_mask(seed, array.shape, rate) if keep_mask is None
                else self.ops.tensor(np.asarray(keep_mask, dtype=bool)))
        return self.ops.numpy(self.ops.dropout(self.ops.tensor(array), keep, rate))


class AutodiffBackend(BackendBase):
    """A backend whose four ops objects work through its :class:`AutodiffOps` (``ops``)."""

    ops: ClassVar[AutodiffOps]

    def __init__(self) -> None:
        self.activations, self.losses = Activations(self.ops), Losses(self.ops)
        self.regularisers, self.dropout = Regularisers(self.ops), Dropout(self.ops)
