"""Surface: the names, types and signatures of the contracts (``mlpcore/backend.py``).

Signatures are checked by binding the exact calls the core makes, so a backend may name its
parameters differently only where the core passes them by position.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import mlpcore
from mlpcore.activations import ActivationOps
from mlpcore.backend import CONTRACT_VERSION, Backend, BackendModel, Trainer, TrainingConfig
from mlpcore.dropout import DropoutOps
from mlpcore.losses import LossOps
from mlpcore.regularisers import RegulariserOps
from mlpcore.spec import DTypeName
from mlpcore_conformance import cases
from mlpcore_conformance.repro import Repro
from mlpcore_conformance.session import ConformanceSession

DTYPES = ("float32", "float64")
SPEC = mlpcore.MLPSpec((4, 3, 2), activation="tanh")
KNOWN_METHODS = ("manual", "autodiff", "optimizer")
ATTRIBUTES = ("name", "contract_version", "capabilities", "training_methods", "activations",
              "losses", "regularisers", "dropout", "framework_version", "build")

X = np.zeros((2, 3), np.float32)
LABELS = np.array([0, 1])
WEIGHTS = [np.zeros((2, 2), np.float32)]
OPS_CALLS: dict[str, tuple[type, dict[str, tuple[tuple[Any, ...], dict[str, Any]]]]] = {
    "activations": (ActivationOps, {
        "value": (("relu", X), {}),
        "derivative": (("relu", X), {}),
    }),
    "losses": (LossOps, {
        "value": (("softmax_cross_entropy", X, LABELS), {}),
        "gradient": (("softmax_cross_entropy", X, LABELS), {}),
    }),
    "regularisers": (RegulariserOps, {
        "value": ((mlpcore.L2(0.1), WEIGHTS), {}),
        "gradient": ((mlpcore.L2(0.1), WEIGHTS), {}),
    }),
    "dropout": (DropoutOps, {
        "apply": ((X, 0.5), {"training": True, "keep_mask": None, "seed": 0}),
    }),
}


def _check_binds(function: Callable[..., Any], label: str, args: tuple[Any, ...],
                 kwargs: dict[str, Any]) -> None:
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        return  # a builtin without a signature: the calls in the other tests check it
    try:
        signature.bind(*args, **kwargs)
    except TypeError as error:
        shown = ", ".join([*(type(a).__name__ for a in args), *(f"{k}=" for k in kwargs)])
        raise AssertionError(f"{label}{signature} does not accept the core's call "
                             f"{label}({shown}): {error}") from None


def test_backend_has_every_contract_attribute(backend: Backend, repro: Repro) -> None:
    repro(f"print({{name: hasattr(backend, name) for name in {ATTRIBUTES}}})",
          "print(backend.name, backend.contract_version)")
    missing = [name for name in ATTRIBUTES if not hasattr(backend, name)]
    assert not missing, f"backend {backend.name!r} lacks {', '.join(missing)}"
    assert isinstance(backend, Backend)
    assert isinstance(backend.name, str) and backend.name, "name must be a non-empty str"
    assert backend.contract_version == CONTRACT_VERSION, (
        f"contract_version is {backend.contract_version!r}; this mlpcore implements "
        f"{CONTRACT_VERSION}")
    assert callable(backend.build)


def test_capabilities_are_declared_capability_values(backend: Backend, repro: Repro) -> None:
    repro("print(repr(backend.capabilities))")
    assert isinstance(backend.capabilities, frozenset), (
        f"capabilities must be a frozenset, got {type(backend.capabilities).__name__}")
    known = {str(c) for c in mlpcore.Capability}
    unknown = {str(c) for c in backend.capabilities} - known
    assert not unknown, f"unknown capabilities {sorted(unknown)}; known: {sorted(known)}"


def test_training_methods_are_known_and_nonempty(backend: Backend, repro: Repro) -> None:
    repro("print(repr(backend.training_methods))")
    methods = backend.training_methods
    assert isinstance(methods, tuple) and methods, "training_methods must be a non-empty tuple"
    unknown = [m for m in methods if m not in KNOWN_METHODS]
    assert not unknown, f"unknown training methods {unknown}; known: {KNOWN_METHODS}"
    assert len(set(methods)) == len(methods), f"duplicate training methods in {methods}"


def test_framework_version_is_a_nonempty_string(backend: Backend, repro: Repro) -> None:
    repro("print(repr(backend.framework_version()))")
    version = backend.framework_version()
    assert isinstance(version, str) and version.strip(), f"framework_version() gave {version!r}"


def test_registered_backend_resolves_by_name(backend: Backend, repro: Repro,
                                             conformance: ConformanceSession) -> None:
    repro("print(mlpcore.list_backends(), mlpcore.get_backend(backend.name) is backend)")
    origin = conformance.backend(backend.name).origin
    if ":" in origin:
        pytest.skip(f"{origin} was given as module:factory, not by a registered name")
    assert backend.name in mlpcore.list_backends()
    assert mlpcore.get_backend(backend.name) is backend, "get_backend must return one object"


@pytest.mark.parametrize("concept", sorted(OPS_CALLS))
def test_ops_objects_satisfy_their_protocols(backend: Backend, repro: Repro,
                                            concept: str) -> None:
    protocol, calls = OPS_CALLS[concept]
    repro("import inspect", *[f"print(inspect.signature(backend.{concept}.{method}))"
                              for method in calls])
    ops = getattr(backend, concept)
    assert isinstance(ops, protocol), (
        f"backend.{concept} does not satisfy {protocol.__name__} (methods: {', '.join(calls)})")
    for method, (args, kwargs) in calls.items():
        _check_binds(getattr(ops, method), f"backend.{concept}.{method}", args, kwargs)


@pytest.mark.parametrize("dtype", DTYPES)
def test_build_gives_a_backend_model(backend: Backend, repro: Repro, dtype: DTypeName) -> None:
    repro("model = backend.build(spec, cases.variables(spec, 1, dtype), dtype)",
          "print(type(model).__mro__, model.spec, model.dtype)", spec=SPEC, dtype=dtype)
    values = cases.variables(SPEC, 1, dtype)
    model = backend.build(SPEC, values, dtype)
    assert isinstance(model, BackendModel), "build() must return a BackendModel"
    assert model.spec == SPEC
    assert model.dtype == dtype
    x = cases.normal(2, (5, 4), dtype)
    config = TrainingConfig(loss="softmax_cross_entropy", optimizer=mlpcore.SGD(0.1))
    methods: list[tuple[str, Callable[..., Any], tuple[Any, ...]]] = [
        ("read_variables", model.read_variables, ()),
        ("write_variables", model.write_variables, (values,)),
        ("forward", model.forward, (x,)),
        ("loss_and_gradients", model.loss_and_gradients,
         (x, LABELS, "softmax_cross_entropy", (), None)),
        ("start_training", model.start_training, (config, x, LABELS)),
    ]
    for label, function, args in methods:
        _check_binds(function, f"model.{label}", args, {})


@pytest.mark.parametrize("dtype", DTYPES)
def test_read_variables_returns_canonical_copies(backend: Backend, repro: Repro,
                                                 dtype: DTypeName) -> None:
    repro("model = backend.build(spec, cases.variables(spec, 3, dtype), dtype)",
          "got = model.read_variables()", spec=SPEC, dtype=dtype)
    values = cases.variables(SPEC, 3, dtype)
    model = backend.build(SPEC, values, dtype)
    got = model.read_variables()
    assert list(got) == list(SPEC.variable_shapes()), (
        f"read_variables() names {list(got)}, expected {list(SPEC.variable_shapes())} "
        "(layer order, weights before bias)")
    for name, shape in SPEC.variable_shapes().items():
        array = got[name]
        assert isinstance(array, np.ndarray), f"{name} is a {type(array).__name__}, not ndarray"
        assert array.dtype == np.dtype(dtype), f"{name} has dtype {array.dtype}, not {dtype}"
        assert array.shape == shape, f"{name} has shape {array.shape}, not {shape}"
    before = {name: array.copy() for name, array in got.items()}
    for array in got.values():
        array[...] = 123.0  # a copy: changing it must not change the model
    again = model.read_variables()
    for name, value in before.items():
        assert np.array_equal(again[name], value), (
            f"changing the array read_variables() returned for {name} changed the model")


@pytest.mark.parametrize("dtype", DTYPES)
def test_forward_returns_logits_of_the_model_dtype(backend: Backend, repro: Repro,
                                                   dtype: DTypeName) -> None:
    repro("model = backend.build(spec, cases.variables(spec, 4, dtype), dtype)",
          "out = model.forward(cases.normal(5, (6, 4), dtype))", spec=SPEC, dtype=dtype)
    model = backend.build(SPEC, cases.variables(SPEC, 4, dtype), dtype)
    out = model.forward(cases.normal(5, (6, 4), dtype))
    assert isinstance(out, np.ndarray), f"forward() gave a {type(out).__name__}, not ndarray"
    assert out.shape == (6, 2) and out.dtype == np.dtype(dtype), (
        f"forward() gave {out.dtype} {out.shape}, expected {dtype} (6, 2)")


@pytest.mark.mlpcore_requires("gradients")
@pytest.mark.parametrize("dtype", DTYPES)
def test_loss_and_gradients_returns_float_and_canonical_gradients(backend: Backend,
                                                                  repro: Repro,
                                                                  dtype: DTypeName) -> None:
    repro("model = backend.build(spec, cases.variables(spec, 6, dtype), dtype)",
          "objective, grads = model.loss_and_gradients(cases.normal(7, (5, 4), dtype), "
          "cases.labels(8, 5, 2), 'softmax_cross_entropy')", spec=SPEC, dtype=dtype)
    model = backend.build(SPEC, cases.variables(SPEC, 6, dtype), dtype)
    objective, grads = model.loss_and_gradients(cases.normal(7, (5, 4), dtype),
                                                cases.labels(8, 5, 2), "softmax_cross_entropy")
    assert isinstance(objective, float), f"objective is a {type(objective).__name__}, not float"
    assert list(grads) == list(SPEC.variable_shapes()), f"gradients named {list(grads)}"
    for name, shape in SPEC.variable_shapes().items():
        grad = grads[name]
        assert isinstance(grad, np.ndarray) and grad.shape == shape \
            and grad.dtype == np.dtype(dtype), (
                f"gradient {name}: {type(grad).__name__} {getattr(grad, 'dtype', '?')} "
                f"{getattr(grad, 'shape', '?')}, expected {dtype} {shape}")


@pytest.mark.parametrize("dtype", DTYPES)
def test_trainer_runs_and_returns_float64_objectives(backend: Backend, repro: Repro,
                                                     dtype: DTypeName) -> None:
    config = TrainingConfig(loss="softmax_cross_entropy", optimizer=mlpcore.SGD(0.1),
                            method=backend.training_methods[0])
    repro("model = backend.build(spec, cases.variables(spec, 9, dtype), dtype)",
          "trainer = model.start_training(config, cases.normal(10, (7, 4), dtype), "
          "cases.labels(11, 7, 2))", "losses = trainer.run(np.arange(7, dtype=np.int64), 3, 0)",
          spec=SPEC, dtype=dtype, config=config)
    model = backend.build(SPEC, cases.variables(SPEC, 9, dtype), dtype)
    x = cases.normal(10, (7, 4), dtype)
    trainer = model.start_training(config, x, cases.labels(11, 7, 2))
    assert isinstance(trainer, Trainer), "start_training() must return a Trainer"
    _check_binds(trainer.run, "trainer.run", (np.arange(7, dtype=np.int64), 3, 0), {})
    losses = trainer.run(np.arange(7, dtype=np.int64), 3, 0)
    assert isinstance(losses, np.ndarray) and losses.dtype == np.float64 \
        and losses.shape == (3,), (
            f"run() gave {type(losses).__name__} {getattr(losses, 'dtype', '?')} "
            f"{getattr(losses, 'shape', '?')}, expected float64 (3,) for 7 rows in batches of 3")
