"""What the built-in backends share, as Keras 3's ``backend/common``; imports no framework.

:class:`ModelBase`, :class:`TrainerBase` and :class:`BackendBase` work through an autodiff
framework's :class:`AutodiffOps`; a backend with hand-written passes overrides them. Inheriting is
optional: the Protocols of :mod:`mlpcore.backend` are the contract (docs/writing-a-backend.md).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from types import ModuleType
from typing import Any, ClassVar, Generic, Protocol, TypeVar

import numpy as np
import numpy.typing as npt

from mlpcore.activations import ActivationName, ActivationOps
from mlpcore.backend import CONTRACT_VERSION, Capability, Trainer, TrainingConfig, batch_blocks
from mlpcore.devices import CPU, Portable
from mlpcore.distributed import World
from mlpcore.dropout import DropoutOps, check_rate, dropout_widths, portable_keep_mask, scaled_mask
from mlpcore.losses import LossName, LossOps, check_loss
from mlpcore.optimizers import SLOTS, OptimizerState, kind
from mlpcore.regularisers import REGULARISERS, Regulariser, RegulariserOps
from mlpcore.spec import ComputeDType, MLPSpec, master_dtype

F = TypeVar("F")
Native = Any  # a framework's array: NumPy array, torch.Tensor, tf.Tensor, jax.Array
FloatArray = npt.NDArray[np.floating]
BoolArray = npt.NDArray[np.bool_]


class Table(dict[str, F], Generic[F]):
    """A framework's function for each name of one contract (``what``: ``"activation"``,
    ``"loss"``, ``"regulariser"``); any other name raises ``ValueError``: no fallback."""

    def __init__(self, what: str, entries: Mapping[str, F]) -> None:
        super().__init__(entries)
        self.what = what

    def __missing__(self, name: str) -> F:
        raise ValueError(f"unknown {self.what} {name!r}; choose one of {', '.join(self)}")


_KINDS: Table[None] = Table("regulariser", dict.fromkeys(REGULARISERS))


def interleave(weights: Sequence[Native], biases: Sequence[Native]) -> list[Native]:
    """``[W_0, b_0, W_1, b_1, ...]``, the order of :meth:`MLPSpec.variable_shapes`."""
    return [v for pair in zip(weights, biases, strict=True) for v in pair]


def floating(x: Any) -> FloatArray:
    """``x`` as a NumPy array; ``TypeError`` unless its dtype is floating-point."""
    array = np.asarray(x)
    if array.dtype.kind != "f":
        raise TypeError(f"expected a floating-point array, got dtype {array.dtype}")
    return array


def labels(targets: Any, dtype: npt.DTypeLike) -> npt.NDArray[Any]:
    """Integer labels as int64, float targets in ``dtype``."""
    array = np.asarray(targets)
    return array.astype(dtype if array.dtype.kind == "f" else np.int64, copy=False)


def penalties(table: Table[F], regularisers: Sequence[Regulariser]) -> tuple[tuple[float, F], ...]:
    """``(λ, table[kind])`` for every regulariser: an unknown kind is refused here, once."""
    return tuple((r.strength, table[r.kind]) for r in regularisers)


@dataclass(frozen=True)
class Penalty:
    """``Σ_(λ, term) λ Σ_i term(W_i)`` over the weight matrices (0 without terms), hashable."""

    terms: tuple[tuple[float, Callable[[Native], Native]], ...] = ()

    def __call__(self, *weights: Native) -> Native:
        return sum((strength * term(w) for strength, term in self.terms for w in weights), 0)


@dataclass(frozen=True)
class Network:
    """The MLP in one framework's arrays: ``a_{i+1} = f(dense(a_i, W_i, b_i)) · s_i`` (``s_i``
    scaled masks, if any), linear logits (N, K), ``objective = loss + penalty(W_0, …)``.
    Hashable: a JIT can take it as a static argument, a framework cache its gradient.

    Mixed precision (``compute`` ``"bfloat16"`` or ``"float16"``), as the frameworks' AMP: each
    dense layer's input, ``W``, ``b`` and the scaled masks are cast to ``compute``, the logits back
    to float32, so loss, penalties and the float32 masters' gradients are float32."""

    dense: Callable[[Native, Native, Native], Native]
    activation: Callable[[Native], Native]
    loss: Callable[[Native, Native], Native] | None = None
    penalty: Penalty = Penalty()
    cast: Callable[[Native, str], Native] | None = None
    compute: str | None = None

    def _dense(self, a: Native, w: Native, b: Native) -> Native:
        if self.compute is None or self.cast is None:
            return self.dense(a, w, b)
        c, to = self.compute, self.cast
        return self.dense(to(a, c), to(w, c), to(b, c))

    def forward(self, weights: Sequence[Native], biases: Sequence[Native], x: Native,
                masks: Sequence[Native] = ()) -> Native:
        a = x
        for i in range(len(weights) - 1):
            a = self.activation(self._dense(a, weights[i], biases[i]))
            if masks:
                a = a * (masks[i] if self.cast is None or self.compute is None
                         else self.cast(masks[i], self.compute))
        logits = self._dense(a, weights[-1], biases[-1])
        return logits if self.cast is None or self.compute is None else self.cast(
            logits, "float32")

    def objective(self, weights: Sequence[Native], biases: Sequence[Native], x: Native,
                  targets: Native, masks: Sequence[Native] = ()) -> Native:
        assert self.loss is not None, "a network built without a loss"
        value = self.loss(self.forward(weights, biases, x, masks), targets)
        return value + self.penalty(*weights) if self.penalty.terms else value

    def __call__(self, *args: Native) -> Native:
        """:meth:`objective` of ``(W_0, b_0, …, W_{L-1}, b_{L-1}, x, targets, masks)``."""
        *params, x, targets, masks = args
        return self.objective(params[0::2], params[1::2], x, targets, masks)


MIXED: frozenset[str] = frozenset({"bfloat16", "float16"})
"""The mixed-precision model dtypes: float32 masters, passes in this dtype."""


def network(ops: AutodiffOps, activation: str, loss: str | None = None,
            regularisers: Sequence[Regulariser] = (), dtype: str = "float32") -> Network:
    """The :class:`Network` of ``ops`` for these names, computing in ``dtype`` (mixed precision
    for bfloat16 and float16); an unknown name raises ``ValueError``."""
    mixed = dtype in MIXED
    return Network(ops.dense, ops.activations[activation],
                   None if loss is None else ops.losses[loss],
                   Penalty(penalties(ops.penalties, regularisers)),
                   ops.cast if mixed else None, dtype if mixed else None)


AUTODIFF_CAPABILITIES: frozenset[str] = frozenset({
    Capability.FLOAT64, Capability.GRADIENTS, Capability.NATIVE_DROPOUT, Capability.COMPILE})
"""What a framework backend on :class:`AutodiffOps` offers: float64, gradients, its own RNG's
dropout masks and a compiled step."""


class AutodiffOps(Protocol):
    """What an autodiff framework supplies in its ``ops.py``:

    - ``activations[name](z)``; ``losses[name](outputs, targets)``, the batch mean, targets int64
      (N,) or floats (N, K); ``penalties[kind](W)`` before λ (L1: gradient 0 at 0);
    - ``dense(a, W, b) = a W + b``, ``W`` in the backend's own layout;
    - ``tensor(array)``, ``numpy(value)``: conversions keeping values, dtype and shape, the latter
      sharing no caller's memory;
    - ``gradients(fn, args, n)``: ``fn(*args)`` and the gradients of the sum of its entries in the
      first ``n`` args (the others pass through); ``fn`` is hashable (a table entry, a
      :class:`Penalty`, a :class:`Network`), so a framework may cache by it;
    - ``keep_mask(seed, shape, rate)``: a bool ``u >= float32(p)`` from its RNG keyed by ``seed``;
    - ``dropout(x, keep, rate)``: ``where(keep, x · keep_scale(rate), 0)`` in ``x``'s dtype, so a
      dropped entry is exactly 0 even where ``x`` is infinite or NaN;
    - ``cast(x, dtype)``: ``x`` in the dtype of that name (``"bfloat16"``, ``"float16"``,
      ``"float32"``), differentiable (the gradient is cast back); a static function, hashable.
    """

    activations: Table[Callable[[Native], Native]]
    losses: Table[Callable[[Native, Native], Native]]
    penalties: Table[Callable[[Native], Native]]

    def dense(self, a: Native, w: Native, b: Native) -> Native: ...
    def tensor(self, array: npt.NDArray[Any]) -> Native: ...
    def numpy(self, value: Native) -> npt.NDArray[Any]: ...
    def gradients(self, fn: Callable[..., Native], args: Sequence[Native],
                  n: int) -> tuple[Native, list[Native]]: ...
    def keep_mask(self, seed: int, shape: tuple[int, ...], rate: float) -> Native: ...
    def dropout(self, x: Native, keep: Native, rate: float) -> Native: ...
    def cast(self, x: Native, dtype: str) -> Native: ...


class ManualOps(AutodiffOps, Protocol):
    """What a framework supplies besides :class:`AutodiffOps` for the ``manual`` training method
    (backprop written with its linear algebra, no autodiff):

    - ``loss_gradients[name](z, targets)``: ``dL/dz`` of the batch-mean loss (docs/contracts.md);
    - ``derivatives[name](h)``: ``f'`` from the activation's output ``h = f(z)``: relu ``[h > 0]``,
      sigmoid ``h(1 - h)``, tanh ``1 - h²``;
    - ``penalty_gradients[kind](W)``: the penalty's gradient before λ (``W``, ``sign(W)``);
    - ``dense_gradients(a, delta)``: ``(aᵀ δ, Σ_n δ)`` with the weight gradient in the
      backend's own layout; ``dense_backward(delta, W) = δ Wᵀ`` (canonical ``W``'s transpose).
    """

    loss_gradients: Table[Callable[[Native, Native], Native]]
    derivatives: Table[Callable[[Native], Native]]
    penalty_gradients: Table[Callable[[Native], Native]]

    def dense_gradients(self, a: Native, delta: Native) -> tuple[Native, Native]: ...
    def dense_backward(self, delta: Native, w: Native) -> Native: ...


@dataclass(frozen=True)
class Backprop:
    """The ``manual`` method's objective and gradients through :class:`ManualOps`, the NumPy
    backend's backpropagation (:mod:`mlpcore_numpy.network`) in a framework's own ops::

        forward:  h_i = f(a_i W_i + b_i);  a_{i+1} = h_i · s_i   (s_i scaled keep-mask, if any)
        backward: δ_{L-1} = dL/dz_{L-1};  dW_i = a_iᵀ δ_i + Σ λ dP(W_i);  db_i = Σ_n δ_i
                  δ_{i-1} = (δ_i W_iᵀ) · s_{i-1} · f'(h_{i-1})

    Hashable, as :class:`Network`; called as ``(weights, biases, x, targets, masks)``, it returns
    ``(objective, [dW_0, db_0, dW_1, …])`` (:func:`interleave` order)."""

    ops: ManualOps
    activation: str
    loss: str
    regularisers: tuple[Regulariser, ...] = ()

    def __call__(self, weights: Sequence[Native], biases: Sequence[Native], x: Native,
                 targets: Native, masks: Sequence[Native] = ()) -> tuple[Native, list[Native]]:
        ops, terms = self.ops, [(r.strength, r.kind) for r in self.regularisers]
        inputs, outputs = [x], []
        for i in range(len(weights) - 1):
            outputs.append(ops.activations[self.activation](ops.dense(inputs[i], weights[i],
                                                                      biases[i])))
            inputs.append(outputs[i] * masks[i] if masks else outputs[i])
        z = ops.dense(inputs[-1], weights[-1], biases[-1])
        objective = ops.losses[self.loss](z, targets)
        for strength, name in terms:
            objective = objective + sum(strength * ops.penalties[name](w) for w in weights)
        delta, grads = ops.loss_gradients[self.loss](z, targets), list[Native]()
        for i in range(len(weights) - 1, -1, -1):
            grad_w, grad_b = ops.dense_gradients(inputs[i], delta)
            for strength, name in terms:
                grad_w = grad_w + strength * ops.penalty_gradients[name](weights[i])
            grads[:0] = [grad_w, grad_b]
            if i:
                delta = ops.dense_backward(delta, weights[i])
                if masks:
                    delta = delta * masks[i - 1]
                delta = delta * ops.derivatives[self.activation](outputs[i - 1])
        return objective, grads


class ModelBase:
    """:class:`~mlpcore.backend.BackendModel` over native variables ``_weights[i]``,
    ``_biases[i]`` in the subclass's layout (:meth:`_native`, :meth:`_canonical` convert one array
    each way; :meth:`_assign` writes in place, so a running trainer sees it). The passes are the
    :class:`Network`'s through ``ops``; :meth:`forward` runs blocks of ``forward_rows`` rows.

    ``device`` is a native device name of the backend; :meth:`_placed` is the context in which
    arrays are made and ops run, :meth:`_tensor` makes a NumPy array a native one on the device.
    NumPy arrays cross in ``master``, the variables' dtype (float32 for mixed precision)."""

    training_methods: ClassVar[tuple[str, ...]]
    forward_rows: ClassVar[int] = 8192
    ops: ClassVar[AutodiffOps]

    def __init__(self, spec: MLPSpec, variables: Mapping[str, FloatArray], dtype: ComputeDType,
                 device: str = CPU):
        self.spec, self.device = spec, device
        self.dtype: ComputeDType = dtype
        self.master = master_dtype(dtype)
        with self._placed():
            self._weights, self._biases = self._convert(variables)

    def _placed(self) -> contextlib.AbstractContextManager[Any]:
        return contextlib.nullcontext()

    def _tensor(self, array: npt.NDArray[Any]) -> Native:
        return self.ops.tensor(array)

    def _native(self, array: FloatArray) -> Native:
        return np.array(array, order="C")

    def _canonical(self, value: Native) -> FloatArray:
        return np.array(value, order="C")

    def _assign(self, weights: list[Native], biases: list[Native]) -> None:
        for target, source in zip(self._weights + self._biases, weights + biases, strict=True):
            target[...] = source

    def _forward(self, x: FloatArray) -> FloatArray:
        """Eval-mode logits of one block of rows."""
        net = network(self.ops, self.spec.activation, dtype=self.dtype)
        with self._placed():
            return self.ops.numpy(net.forward(self._weights, self._biases, self._tensor(x)))

    def _gradients(self, x: FloatArray, targets: npt.NDArray[Any], loss: LossName,
                   regularisers: Sequence[Regulariser],
                   masks: Sequence[BoolArray]) -> tuple[float, list[Native]]:
        """The objective and its native gradients in :func:`interleave` order (no masks: eval)."""
        params = interleave(self._weights, self._biases)
        with self._placed():
            scaled = tuple(self._tensor(scaled_mask(m, self.spec.dropout, self.master))
                           for m in masks)
            value, grads = self.ops.gradients(
                network(self.ops, self.spec.activation, loss, regularisers, self.dtype),
                [*params, self._tensor(x), self._tensor(targets), scaled], len(params))
        return float(value), grads

    def _trainer(self, config: TrainingConfig, x: FloatArray, targets: npt.NDArray[Any],
                 state: OptimizerState | None) -> Trainer:
        raise NotImplementedError

    def _convert(self, values: Mapping[str, Any]) -> tuple[list[Native], list[Native]]:
        """Every value converted, or ``ValueError`` and none: a write is all-or-nothing."""
        shapes = self.spec.variable_shapes()
        wrong = [f"variable {name!r} has shape {np.shape(values[name])}, expected {shape}"
                 for name, shape in shapes.items() if np.shape(values[name]) != shape]
        if wrong:
            raise ValueError("; ".join(wrong))
        arrays = [self._native(np.asarray(values[name], dtype=self.master)) for name in shapes]
        return arrays[0::2], arrays[1::2]

    def _named(self, arrays: Sequence[Native]) -> dict[str, FloatArray]:
        """Native arrays in :func:`interleave` order, as canonical NumPy arrays by name."""
        return dict(zip(self.spec.variable_shapes(), map(self._canonical, arrays), strict=True))

    def read_variables(self) -> dict[str, FloatArray]:
        return self._named(interleave(self._weights, self._biases))

    def write_variables(self, values: Mapping[str, FloatArray]) -> None:
        with self._placed():
            self._assign(*self._convert(values))

    def forward(self, x: FloatArray) -> FloatArray:
        x = np.asarray(x, dtype=self.master)
        out = np.empty((x.shape[0], self.spec.n_outputs), self.master)
        for start in range(0, x.shape[0], self.forward_rows):
            rows = slice(start, start + self.forward_rows)
            out[rows] = self._forward(x[rows])
        return out

    def loss_and_gradients(self, x: FloatArray, targets: npt.NDArray[Any], loss: LossName,
                           regularisers: Sequence[Regulariser] = (),
                           keep_masks: Sequence[BoolArray] | None = None,
                           ) -> tuple[float, dict[str, FloatArray]]:
        masks = [] if keep_masks is None or not dropout_widths(self.spec) else list(keep_masks)
        value, grads = self._gradients(np.asarray(x, dtype=self.master),
                                       labels(targets, self.master), loss, tuple(regularisers),
                                       masks)
        return value, self._named(grads)

    def start_training(self, config: TrainingConfig, x: FloatArray,
                       targets: npt.NDArray[Any], state: OptimizerState | None = None) -> Trainer:
        if config.method is not None and config.method not in self.training_methods:
            raise ValueError(f"this model trains with method "
                             f"{' or '.join(map(repr, self.training_methods))}, "
                             f"not {config.method!r}")
        check_loss(config.loss)  # unknown names are refused here, before any trainer is built
        penalties(_KINDS, config.regularisers)
        # float16 defaults to the optimizer method (its framework's loss scaler) where there is one
        default = ("optimizer" if self.dtype == "float16" and "optimizer" in self.training_methods
                   else self.training_methods[0])
        config = replace(config, method=config.method or default)
        if config.method == "manual" and self.dtype != self.master:
            raise ValueError(f"the manual method's backprop computes in the model's {self.master} "
                             f"variables; {self.dtype} trains with 'autodiff' or 'optimizer'")
        with self._placed():
            return self._trainer(config, np.ascontiguousarray(x, dtype=self.master),
                                 np.ascontiguousarray(labels(targets, self.master)), state)


class TrainerBase:
    """:class:`~mlpcore.backend.Trainer` plumbing: :meth:`run` checks the rows and runs the
    :func:`~mlpcore.backend.batch_blocks` by the subclass's :meth:`_block`; :meth:`bind` checks
    the new rows and hands them to the subclass's :meth:`_bind`. ``dropout`` is ``"off"`` (no
    hidden layer or rate 0), ``"portable"`` or ``"native"``. ``step`` counts the optimizer's
    updates (from ``state.step``); the subclass advances it and keeps the slots
    (:meth:`start_slots` in, :meth:`_slot_values` out).

    With ``config.world`` of ``N > 1`` ranks, :meth:`_block` gets this rank's columns of each
    block (:meth:`World.rows <mlpcore.distributed.World.rows>` of the global ``batch`` the block
    runs), ``share`` (its fraction of those rows; 1.0 in one process), and :meth:`step_masks`
    this rank's rows of the global batch's masks; the subclass all-reduces
    ``share · (objective, gradients)`` over the ranks before it updates."""

    def __init__(self, spec: MLPSpec, config: TrainingConfig, n_rows: int,
                 state: OptimizerState | None = None) -> None:
        self.spec, self.config, self.n_rows = spec, config, n_rows
        self.widths = dropout_widths(spec)
        self.dropout = config.dropout_mode if self.widths else "off"
        self.batch, self.share = 0, 1.0
        self.kind = kind(config.optimizer)
        self.step = 0 if state is None else int(state.step)
        self._state = state

    def start_slots(self) -> list[list[FloatArray | None]]:
        """Per variable (:func:`interleave` order), its slots' starting values (canonical
        NumPy, from the state) in ``SLOTS`` order, ``None`` where they start at 0."""
        slots = {} if self._state is None else self._state.slots
        return [[slots.get(f"{name}/{slot}") for slot in SLOTS[self.kind]]
                for name in self.spec.variable_shapes()]

    def _slot_values(self) -> list[list[FloatArray]]:
        """Per variable, its slots now, as canonical NumPy copies (the structure of
        :meth:`start_slots`)."""
        raise NotImplementedError

    def optimizer_state(self) -> OptimizerState:
        """The optimizer's update count and slots now (:class:`~mlpcore.optimizers.
        OptimizerState`, ``epoch`` 0)."""
        slots = {f"{name}/{slot}": value
                 for name, values in zip(self.spec.variable_shapes(), self._slot_values(),
                                         strict=True)
                 for slot, value in zip(SLOTS[self.kind], values, strict=True)}
        return OptimizerState(self.config.optimizer, self.step, slots)

    def run(self, order: npt.NDArray[np.int64], batch_size: int,
            first_step: int) -> npt.NDArray[np.float64]:
        order = np.asarray(order, dtype=np.int64)
        if len(order) and (order.min() < 0 or order.max() >= self.n_rows):
            raise IndexError(f"order holds row indices outside 0..{self.n_rows - 1}: "
                             f"{int(order.min())}..{int(order.max())}")
        parts = []
        for rows, step in batch_blocks(order, batch_size, first_step):
            self.batch = rows.shape[1]
            mine = np.ascontiguousarray(rows[:, self.config.world.rows(self.batch)])
            self.share = mine.shape[1] / self.batch
            parts.append(self._block(mine, step))
        return np.concatenate(parts) if parts else np.empty(0, np.float64)

    def bind(self, x: FloatArray, targets: npt.NDArray[Any]) -> None:
        if np.ndim(x) != 2 or np.shape(x)[1] != self.spec.n_inputs \
                or len(targets) != len(x):
            raise ValueError(f"bind needs inputs (M, {self.spec.n_inputs}) and M targets, got "
                             f"{np.shape(x)} and {np.shape(targets)}")
        self.n_rows = len(x)
        self._bind(np.ascontiguousarray(x), np.ascontiguousarray(targets))

    def _bind(self, x: FloatArray, targets: npt.NDArray[Any]) -> None:
        """Hold ``x`` and ``targets`` (NumPy, checked) as the framework's arrays for ``_block``."""
        raise NotImplementedError

    def _block(self, rows: npt.NDArray[np.int64], first_step: int) -> npt.NDArray[np.float64]:
        """Step ``first_step + j`` on rows ``rows[j]`` for each ``j``; objectives as float64."""
        raise NotImplementedError

    def step_masks(self, step: int, n: int) -> list[BoolArray]:
        """The portable keep-masks of step ``step``: one bool (n, d_l) per hidden layer (this
        rank's ``n`` rows of the global batch's masks when there are several ranks)."""
        world = self.config.world
        batch, rows = (n, slice(None)) if world.size == 1 else (self.batch, world.rows(self.batch))
        return [portable_keep_mask(self.config.seed, step, layer, (batch, width),
                                   self.spec.dropout)[rows]
                for layer, width in enumerate(self.widths)]

    def block_masks(self, first_step: int, n_steps: int, batch: int,
                    capacity: int = 0) -> list[BoolArray]:
        """:meth:`step_masks` of ``n_steps`` steps: one bool (max(capacity, n_steps), batch, d_l)
        array per hidden layer, rows past ``n_steps`` False."""
        blocks = [np.zeros((max(capacity, n_steps), batch, w), bool) for w in self.widths]
        for j in range(n_steps):
            for block, mask in zip(blocks, self.step_masks(first_step + j, batch), strict=True):
                block[j] = mask
        return blocks


@dataclass(frozen=True)
class _Through:
    """An ops object of the contract working through ``ops``, NumPy in and out; a derivative is
    the gradient of the sum of a function's entries."""

    ops: AutodiffOps

    def _grads(self, fn: Callable[..., Native], arrays: Sequence[Any],
               n: int) -> list[npt.NDArray[Any]]:
        _, grads = self.ops.gradients(fn, [self.ops.tensor(np.asarray(a)) for a in arrays], n)
        return [self.ops.numpy(g) for g in grads]


class Activations(_Through):
    def value(self, name: ActivationName, x: FloatArray) -> FloatArray:
        return self.ops.numpy(self.ops.activations[name](self.ops.tensor(floating(x))))

    def derivative(self, name: ActivationName, x: FloatArray) -> FloatArray:
        return self._grads(self.ops.activations[name], [floating(x)], 1)[0]


class Losses(_Through):
    def value(self, name: LossName, outputs: FloatArray, targets: npt.NDArray[Any]) -> float:
        z = np.asarray(outputs)
        return float(self.ops.losses[name](self.ops.tensor(z),
                                           self.ops.tensor(labels(targets, z.dtype))))

    def gradient(self, name: LossName, outputs: FloatArray,
                 targets: npt.NDArray[Any]) -> FloatArray:
        z = np.asarray(outputs)
        return self._grads(self.ops.losses[name], [z, labels(targets, z.dtype)], 1)[0]


class Regularisers(_Through):
    def value(self, regulariser: Regulariser, weights: Sequence[FloatArray]) -> float:
        fn = Penalty(penalties(self.ops.penalties, (regulariser,)))
        return float(fn(*(self.ops.tensor(np.asarray(w)) for w in weights)))

    def gradient(self, regulariser: Regulariser,
                 weights: Sequence[FloatArray]) -> list[FloatArray]:
        fn = Penalty(penalties(self.ops.penalties, (regulariser,)))
        return self._grads(fn, weights, len(weights)) if weights else []


class Dropout(_Through):
    def apply(self, x: FloatArray, rate: float, *, training: bool,
              keep_mask: BoolArray | None = None, seed: int = 0) -> FloatArray:
        rate = check_rate(rate)
        array = np.asarray(x)
        if not training or rate == 0.0:
            return array.copy()
        keep = (self.ops.keep_mask(seed, array.shape, rate) if keep_mask is None
                else self.ops.tensor(np.asarray(keep_mask, dtype=bool)))
        return self.ops.numpy(self.ops.dropout(self.ops.tensor(array), keep, rate))


class DistributedBase:
    """:class:`mlpcore.distributed.ProcessGroup` by a backend's ``distributed`` module, whose
    functions ``world``, ``all_sum`` and ``launch`` take the protocol's arguments."""

    distributed: ClassVar[ModuleType]

    def world(self, timeout: float) -> World | None:
        world: World | None = self.distributed.world(timeout)
        return world

    def all_sum(self, values: Sequence[float]) -> list[float]:
        return list(self.distributed.all_sum(values))

    def launch(self, workers: int, command: Sequence[str], timeout: float) -> None:
        self.distributed.launch(workers, command, timeout)


class BackendBase:
    """:class:`~mlpcore.backend.Backend` boilerplate. A subclass sets ``name``, ``capabilities``,
    ``training_methods``, ``framework`` (its module), ``model`` and ``ops``, through which the
    four ops objects work (or sets those itself)."""

    name: str
    contract_version: int = CONTRACT_VERSION
    capabilities: frozenset[str] = frozenset()
    training_methods: tuple[str, ...]
    framework: ModuleType
    model: ClassVar[type[ModelBase]]
    ops: ClassVar[AutodiffOps]

    def __init__(self) -> None:
        self.activations: ActivationOps = Activations(self.ops)
        self.losses: LossOps = Losses(self.ops)
        self.regularisers: RegulariserOps = Regularisers(self.ops)
        self.dropout: DropoutOps = Dropout(self.ops)

    def framework_version(self) -> str:
        return str(self.framework.__version__)

    def devices(self) -> list[str]:
        """:class:`mlpcore.devices.Placement`: the CPU only, unless a subclass finds more."""
        return [CPU]

    def device_name(self, device: str, portable: Portable | None) -> str:
        """A portable name as ``cpu`` / ``gpu:N``; a native spelling is the subclass's to map."""
        if portable is not None:
            return CPU if portable == Portable("cpu") else f"{portable.kind}:{portable.index}"
        raise ValueError("not 'cpu', 'gpu' or 'gpu:N'")

    def build(self, spec: MLPSpec, variables: Mapping[str, FloatArray],
              dtype: ComputeDType, device: str | None = None) -> ModelBase:
        """``device``: a name :meth:`devices` lists (default: the first, the CPU)."""
        return self.model(spec, variables, dtype, self.devices()[0] if device is None else device)

    def __repr__(self) -> str:
        return (f"<mlpcore backend {self.name!r} "
                f"({self.framework.__name__} {self.framework_version()})>")
