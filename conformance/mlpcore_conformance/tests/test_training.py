"""Training (``Trainer``, ``mlpcore/training.py``): N optimizer steps from one initial state follow
the reference trajectory, step by step, for every training method the backend declares.

Each run takes two epochs of 37 rows in batches of 8 (the fifth batch has 5 rows), the first
epoch in two calls (3 steps, then 2), so the step numbers that pick the portable dropout masks and
the optimizer state carried between calls are checked too. Nesterov and Adam, and a run resumed
from a trainer's ``optimizer_state()``, need the ``optimizers`` capability.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

import mlpcore
from mlpcore.backend import Backend, Capability, TrainingConfig
from mlpcore.losses import LossName
from mlpcore.optimizers import Optimizer, OptimizerState
from mlpcore.regularisers import Regulariser
from mlpcore.spec import ComputeDType, DTypeName, master_dtype
from mlpcore_conformance import cases, reference
from mlpcore_conformance.repro import Code, Repro
from mlpcore_conformance.strategies import DTYPES
from mlpcore_conformance.tolerances import assert_close

KNOWN_METHODS = ("manual", "autodiff", "optimizer")
N_ROWS = 37
BATCH = 8
SEED = 17


@dataclass(frozen=True)
class Case:
    """One training configuration."""

    spec: mlpcore.MLPSpec
    loss: LossName
    targets: str
    optimizer: Optimizer
    regularisers: tuple[Regulariser, ...]

    @property
    def needs(self) -> tuple[str, ...]:
        """The capabilities the case needs: ``optimizers`` beyond SGD with plain momentum."""
        plain = isinstance(self.optimizer, mlpcore.SGD) and not self.optimizer.nesterov
        return () if plain else (Capability.OPTIMIZERS,)


CASES = {
    "plain": Case(mlpcore.MLPSpec((6, 8, 4), activation="sigmoid"), "softmax_cross_entropy",
                  "labels", mlpcore.SGD(0.5), ()),
    "mse-momentum-l2": Case(mlpcore.MLPSpec((6, 7, 5, 3), activation="tanh"), "mse", "floats",
                            mlpcore.SGD(0.1, momentum=0.9), (mlpcore.L2(0.01),)),
    "dropout-momentum-l1-l2": Case(mlpcore.MLPSpec((6, 8, 8, 4), activation="relu", dropout=0.3),
                                   "softmax_cross_entropy", "one_hot",
                                   mlpcore.SGD(0.2, momentum=0.5),
                                   (mlpcore.L1(1e-3), mlpcore.L2(1e-2))),
    "nesterov-l2": Case(mlpcore.MLPSpec((6, 8, 4), activation="relu"), "softmax_cross_entropy",
                        "labels", mlpcore.SGD(0.1, momentum=0.9, nesterov=True),
                        (mlpcore.L2(0.01),)),
    "adam-dropout-l2": Case(mlpcore.MLPSpec((6, 8, 8, 4), activation="tanh", dropout=0.2),
                            "softmax_cross_entropy", "one_hot", mlpcore.Adam(0.01),
                            (mlpcore.L2(1e-3),)),
    "adam-mse": Case(mlpcore.MLPSpec((6, 7, 3), activation="sigmoid"), "mse", "floats",
                     mlpcore.Adam(0.02, betas=(0.8, 0.99), eps=1e-7), ()),
}


def _data(case: Case, dtype: str) -> tuple[npt.NDArray[np.floating], npt.NDArray[Any], str]:
    k = case.spec.n_outputs
    x = cases.normal(71, (N_ROWS, case.spec.n_inputs), dtype)
    if case.targets == "labels":
        return x, cases.labels(72, N_ROWS, k), f"cases.labels(72, {N_ROWS}, {k})"
    if case.targets == "one_hot":
        return (x, cases.one_hot(72, N_ROWS, k, dtype),
                f"cases.one_hot(72, {N_ROWS}, {k}, {dtype!r})")
    return x, cases.normal(72, (N_ROWS, k), dtype, 0.5), \
        f"cases.normal(72, {(N_ROWS, k)}, {dtype!r}, 0.5)"


CHUNKS = [(0, 0, 24, 0), (0, 24, N_ROWS, 3), (1, 0, N_ROWS, 5)]
"""(epoch, start, stop, first_step): the calls to ``Trainer.run``."""


def _start(variables: dict[str, npt.NDArray[np.floating]]) -> reference.TrainResult:
    return reference.TrainResult(np.empty(0), {k: v.astype(np.float64) for k, v in
                                               variables.items()}, {}, 0)


def _reference_steps(case: Case, state: reference.TrainResult, x: npt.NDArray[np.floating],
                     targets: npt.NDArray[Any], order: npt.NDArray[np.int64],
                     first_step: int) -> reference.TrainResult:
    return reference.train_steps(case.spec, state.variables, x, targets, loss_name=case.loss,
                                 optimizer=case.optimizer, regularisers=case.regularisers,
                                 seed=SEED, order=order, batch_size=BATCH, first_step=first_step,
                                 slots=state.slots, step=state.step)


def _check_run(backend: Backend, repro: Repro, case_name: str, dtype: ComputeDType,
               method: str | None, compiled: bool, device: str, bind: bool = False) -> None:
    """The :data:`CHUNKS` against the reference; a mixed-precision ``dtype`` trains float32
    variables on float32 data (``method=None``: the model's default). ``bind``: the trainer
    starts on no rows and each chunk's rows are bound (``Trainer.bind``) and run in order, as
    ``fit`` streams data."""
    case, data_dtype = CASES[case_name], master_dtype(dtype)
    variables = reference.initial_variables(case.spec.sizes, 5, dtype=data_dtype)
    x, targets, targets_code = _data(case, data_dtype)
    config = TrainingConfig(loss=case.loss, optimizer=case.optimizer,
                            regularisers=case.regularisers, dropout_mode="portable", seed=SEED,
                            method=method, compiled=compiled)
    snippet = repro(
        "model = cases.build(backend, spec, reference.initial_variables(spec.sizes, 5, "
        f"dtype={data_dtype!r}), dtype, device)",
        *(["trainer = model.start_training(config, x[:0], targets[:0])"] if bind else
          ["trainer = model.start_training(config, x, targets)"]),
        *[line for i, (e, a, b, s) in enumerate(CHUNKS) for line in (
            [f"rows = reference.epoch_order({SEED}, {e}, {N_ROWS})[{a}:{b}]",
             "trainer.bind(x[rows], targets[rows])",
             f"objectives_{i} = trainer.run(np.arange(len(rows)), {BATCH}, {s})"] if bind else
            [f"objectives_{i} = trainer.run(reference.epoch_order({SEED}, {e}, {N_ROWS})"
             f"[{a}:{b}], {BATCH}, {s})"])],
        "variables = model.read_variables()",
        spec=case.spec, dtype=dtype, device=device, config=config,
        x=cases.code("normal", 71, (N_ROWS, case.spec.n_inputs), data_dtype),
        targets=Code(targets_code))
    model = cases.build(backend, case.spec, variables, dtype, device)
    trainer = model.start_training(config, x[:0] if bind else x, targets[:0] if bind else targets)
    got: list[npt.NDArray[np.float64]] = []
    state = _start(variables)
    want: list[npt.NDArray[np.float64]] = []
    for epoch, start, stop, first_step in CHUNKS:
        order = reference.epoch_order(SEED, epoch, N_ROWS)[start:stop]
        if bind:
            trainer.bind(x[order], targets[order])
        got.append(np.asarray(trainer.run(np.arange(len(order)) if bind else order, BATCH,
                                          first_step)))
        state = _reference_steps(case, state, x, targets, order, first_step)
        want.append(state.objectives)
    label = (f"{case_name}, method {method!r}{', compiled' if compiled else ''}"
             f"{', rows bound chunk by chunk' if bind else ''}")
    assert_close(np.concatenate(got), np.concatenate(want), "training", dtype,
                 what=f"per-step objectives ({label})", reproduce=snippet)
    final = model.read_variables()
    for name, value in state.variables.items():
        assert_close(final[name], value, "training", dtype,
                     what=f"{name} after {sum(len(w) for w in want)} steps ({label})",
                     reproduce=snippet)


@pytest.mark.parametrize("method", KNOWN_METHODS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case_name", sorted(CASES))
def test_steps_follow_the_reference(backend: Backend, repro: Repro, device: str, case_name: str,
                                    dtype: ComputeDType, method: str) -> None:
    if method not in backend.training_methods:
        pytest.skip(f"backend {backend.name!r} declares no training method {method!r}")
    missing = [c for c in CASES[case_name].needs if c not in backend.capabilities]
    if missing:
        pytest.skip(f"backend {backend.name!r} does not declare {', '.join(missing)}")
    _check_run(backend, repro, case_name, dtype, method, compiled=False, device=device)


@pytest.mark.parametrize("method", KNOWN_METHODS)
def test_bound_chunks_follow_the_reference(backend: Backend, repro: Repro, device: str,
                                           method: str) -> None:
    """``Trainer.bind`` then ``run``, chunk by chunk, as ``fit`` streams data larger than memory:
    the same trajectory, optimiser state (momentum) and step numbers (dropout) carried on."""
    if method not in backend.training_methods:
        pytest.skip(f"backend {backend.name!r} declares no training method {method!r}")
    _check_run(backend, repro, "dropout-momentum-l1-l2", "float32", method, compiled=False,
               device=device, bind=True)


@pytest.mark.mlpcore_requires("compile")
def test_compiled_steps_follow_the_reference(backend: Backend, repro: Repro,
                                             device: str) -> None:
    _check_run(backend, repro, "dropout-momentum-l1-l2", "float32", backend.training_methods[0],
               compiled=True, device=device)


def test_fit_epoch_losses_follow_the_reference(backend: Backend, repro: Repro,
                                               device: str) -> None:
    """``fit`` in chunks of two steps: epoch losses are the mean of the reference's steps."""
    case = CASES["dropout-momentum-l1-l2"]
    x, targets, _ = _data(case, "float32")
    snippet = repro("model = mlpcore.MLP(spec, backend=backend, seed=17, device=device)",
                    "history = mlpcore.fit(model, (x, targets), loss=loss, optimizer=optimizer, "
                    "regulariser=regs, epochs=2, batch_size=8, steps_per_call=2, "
                    "train_accuracy=False)",
                    spec=case.spec, device=device, loss=case.loss, optimizer=case.optimizer,
                    regs=list(case.regularisers),
                    x=cases.code("normal", 71, (N_ROWS, case.spec.n_inputs), "float32"),
                    targets=cases.code("one_hot", 72, N_ROWS, case.spec.n_outputs, "float32"))
    model = mlpcore.MLP(case.spec, backend=backend, seed=SEED, device=device)
    start = model.variables
    history = mlpcore.fit(model, (x, targets), loss=case.loss, optimizer=case.optimizer,
                          regulariser=list(case.regularisers), epochs=2, batch_size=BATCH,
                          steps_per_call=2, train_accuracy=False)
    state = _start(start)
    means = []
    for epoch in range(2):
        state = _reference_steps(case, state, x, targets,
                                 reference.epoch_order(SEED, epoch, N_ROWS), epoch * 5)
        means.append(float(state.objectives.mean()))
    assert_close(history.loss, means, "training", "float32", what="fit's epoch losses",
                 reproduce=snippet)
    for name, value in state.variables.items():
        assert_close(model.variables[name], value, "training", "float32",
                     what=f"{name} after fit", reproduce=snippet)


@pytest.mark.parametrize("dtype", DTYPES)
def test_native_dropout_mode(backend: Backend, repro: Repro, dtype: ComputeDType) -> None:
    """With ``native_dropout`` declared, the native mode trains: at p = 0 exactly along the
    reference trajectory, at p = 0.5 with finite objectives. Without it, ``fit`` refuses the mode
    (native masks differ by design, so nothing else can be compared)."""
    x, labels, _ = _data(CASES["plain"], dtype)
    if Capability.NATIVE_DROPOUT not in backend.capabilities:
        repro("model = mlpcore.MLP(MLPSpec((6, 8, 4), dropout=0.5), backend=backend)",
              "mlpcore.fit(model, (x, labels), dropout_mode='native', epochs=1)  # must raise "
              "ValueError", x=cases.code("normal", 71, (N_ROWS, 6), dtype),
              labels=cases.code("labels", 72, N_ROWS, 4))
        refused = mlpcore.MLP(mlpcore.MLPSpec((6, 8, 4), dropout=0.5), backend=backend)
        with pytest.raises(ValueError):
            mlpcore.fit(refused, (x, labels), dropout_mode="native", epochs=1)
        return
    order = reference.epoch_order(SEED, 0, N_ROWS)
    for rate in (0.0, 0.5):
        spec = mlpcore.MLPSpec((6, 8, 4), activation="tanh", dropout=rate)
        variables = reference.initial_variables(spec.sizes, 5, dtype=dtype)
        config = TrainingConfig(loss="softmax_cross_entropy", optimizer=mlpcore.SGD(0.3),
                                dropout_mode="native", seed=SEED,
                                method=backend.training_methods[0])
        snippet = repro("model = backend.build(spec, reference.initial_variables(spec.sizes, 5, "
                        "dtype=dtype), dtype)",
                        "objectives = model.start_training(config, x, labels).run(order, 8, 0)",
                        spec=spec, dtype=dtype, config=config,
                        x=cases.code("normal", 71, (N_ROWS, 6), dtype),
                        labels=cases.code("labels", 72, N_ROWS, 4),
                        order=Code(f"reference.epoch_order({SEED}, 0, {N_ROWS})"))
        model = backend.build(spec, variables, dtype)
        objectives = np.asarray(model.start_training(config, x, labels).run(order, BATCH, 0))
        assert objectives.shape == (5,) and np.all(np.isfinite(objectives)), (
            f"native dropout p={rate}: objectives {objectives.tolist()}\nreproduce:\n{snippet}")
        if rate == 0.0:
            want = reference.train_steps(spec, variables, x, labels,
                                         loss_name="softmax_cross_entropy",
                                         optimizer=mlpcore.SGD(0.3), seed=SEED, order=order,
                                         batch_size=BATCH)
            assert_close(objectives, want.objectives, "training", dtype,
                         what="per-step objectives, native dropout mode at p=0",
                         reproduce=snippet)


@pytest.mark.mlpcore_requires("optimizers")
@pytest.mark.parametrize("method", KNOWN_METHODS)
@pytest.mark.parametrize("case_name", ["dropout-momentum-l1-l2", "nesterov-l2", "adam-dropout-l2"])
def test_resumed_run_is_the_straight_run(backend: Backend, repro: Repro, case_name: str,
                                         method: str) -> None:
    """A trainer started from another's ``optimizer_state()`` (its slots and update count) and
    variables continues as one trainer running every chunk would: the same objectives and
    variables within the tolerance table (a framework optimizer whose own slots differ from the
    contract's, as Keras's SGD velocity ``-lr·v``, converts them, which may round); the state names
    every slot of every variable, and, restored into the reference, the last chunk follows the
    reference."""
    if method not in backend.training_methods:
        pytest.skip(f"backend {backend.name!r} declares no training method {method!r}")
    case = CASES[case_name]
    dtype: DTypeName = "float64" if Capability.FLOAT64 in backend.capabilities else "float32"
    variables = reference.initial_variables(case.spec.sizes, 5, dtype=dtype)
    x, targets, targets_code = _data(case, dtype)
    config = TrainingConfig(loss=case.loss, optimizer=case.optimizer,
                            regularisers=case.regularisers, seed=SEED, method=method)
    orders = [(reference.epoch_order(SEED, e, N_ROWS)[a:b], s) for e, a, b, s in CHUNKS]
    snippet = repro(
        "first = backend.build(spec, reference.initial_variables(spec.sizes, 5, dtype=dtype), "
        "dtype)",
        "trainer = first.start_training(config, x, targets)",
        *[f"trainer.run(reference.epoch_order({SEED}, {e}, {N_ROWS})[{a}:{b}], {BATCH}, {s})"
          for e, a, b, s in CHUNKS[:2]],
        "state = trainer.optimizer_state()",
        "second = backend.build(spec, first.read_variables(), dtype)",
        f"resumed = second.start_training(config, x, targets, state).run("
        f"reference.epoch_order({SEED}, 1, {N_ROWS}), {BATCH}, 5)",
        spec=case.spec, dtype=dtype, config=config,
        x=cases.code("normal", 71, (N_ROWS, case.spec.n_inputs), dtype),
        targets=Code(targets_code))
    straight = backend.build(case.spec, variables, dtype)
    trainer = straight.start_training(config, x, targets)
    want = [np.asarray(trainer.run(order, BATCH, s)) for order, s in orders]
    first = backend.build(case.spec, variables, dtype)
    trainer = first.start_training(config, x, targets)
    for order, s in orders[:2]:
        trainer.run(order, BATCH, s)
    state: OptimizerState = trainer.optimizer_state()  # type: ignore[attr-defined]
    names = mlpcore.optimizers.slot_names(case.optimizer, list(case.spec.variable_shapes()))
    assert state.optimizer == case.optimizer and state.step == 5 and sorted(state.slots) == \
        sorted(names), (f"optimizer_state(): optimizer {state.optimizer}, step {state.step}, "
                        f"slots {sorted(state.slots)}; expected step 5 and slots {names}"
                        f"\nreproduce:\n{snippet}")
    second = backend.build(case.spec, first.read_variables(), dtype)
    order, first_step = orders[2]
    got = np.asarray(second.start_training(config, x, targets, state).run(order, BATCH,
                                                                          first_step))
    assert_close(got, want[2], "training", dtype,
                 what=f"objectives of the resumed run ({case_name}, {method})", reproduce=snippet)
    final, expected = second.read_variables(), straight.read_variables()
    for name, value in expected.items():
        assert_close(final[name], value, "training", dtype, what=f"{name} after the resumed run",
                     reproduce=snippet)
    restored = reference.TrainResult(np.empty(0), {k: v.astype(np.float64) for k, v in
                                                   first.read_variables().items()},
                                     {k: np.asarray(v, np.float64)
                                      for k, v in state.slots.items()}, state.step)
    last = _reference_steps(case, restored, x, targets, order, first_step)
    assert_close(got, last.objectives, "training", dtype,
                 what=f"objectives of the resumed run against the reference ({case_name})",
                 reproduce=snippet)
