"""Unit tests of the JAX backend beyond the conformance suite: what is particular to JAX.

The contract itself (values, gradients, training trajectories, checkpoints) is checked by
``mlpcore conformance --backend jax``; these tests cover the plugin's own design decisions: the
entry point imports no JAX, float64 never leaks out of the x64 scope, chunking and padding do not
change a run, the number of compiled programs stays small, native masks depend only on the step.
"""

from __future__ import annotations

import json
import subprocess
import sys

import jax
import jax.numpy as jnp
import mlpcore
import numpy as np
import pytest
from mlpcore.backend import TrainingConfig
from mlpcore.dropout import DropoutMode
from mlpcore.spec import DTypeName

from mlpcore_jax.backend import JaxBackend, JaxModel
from mlpcore_jax.ops import abs_with_sign_gradient
from mlpcore_jax.training import JaxTrainer, capacity_for

SPEC = mlpcore.MLPSpec((5, 7, 6, 3), activation="tanh", dropout=0.25)


@pytest.fixture(scope="module")
def backend() -> JaxBackend:
    found = mlpcore.get_backend("jax")
    assert isinstance(found, JaxBackend)
    return found


def _data(n: int, dtype: str = "float32") -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    return rng.normal(size=(n, SPEC.n_inputs)).astype(dtype), rng.integers(0, 3, size=n)


def _trainer(backend: JaxBackend, dtype: DTypeName, mode: DropoutMode = "portable",
             seed: int = 9, momentum: float = 0.5) -> tuple[JaxModel, JaxTrainer]:
    variables = mlpcore.initial_variables(SPEC, seed=1, dtype=dtype)
    model = backend.build(SPEC, variables, dtype)
    x, y = _data(40, dtype)
    config = TrainingConfig(loss="softmax_cross_entropy", optimizer=mlpcore.SGD(0.1, momentum),
                            regularisers=(mlpcore.L1(1e-3),), dropout_mode=mode, seed=seed)
    return model, model.start_training(config, x, y)


def test_the_entry_point_is_found_and_imports_no_jax() -> None:
    code = ("import json, sys, mlpcore\n"
            "names = mlpcore.list_backends()\n"
            "rows = {r.name: [r.status, r.distribution, r.contract_version]\n"
            "        for r in mlpcore.backend_statuses()}\n"
            "print(json.dumps({'names': names, 'jax': rows['jax'],\n"
            "                  'imported': 'jax' in sys.modules}))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120, check=True)
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert "jax" in report["names"]
    assert report["jax"] == ["available", "mlpcore-jax", 1]
    assert report["imported"] is False


def test_float64_stays_inside_the_backend(backend: JaxBackend) -> None:
    before = bool(jax.config.jax_enable_x64)
    model, trainer = _trainer(backend, "float64")
    trainer.run(np.arange(40, dtype=np.int64), 8, 0)
    variables = model.read_variables()
    assert all(v.dtype == np.float64 for v in variables.values())
    assert bool(jax.config.jax_enable_x64) == before
    if not before:
        assert jnp.ones(2).dtype == jnp.float32  # the user's own JAX code is unaffected


def test_float32_models_stay_float32_under_x64(backend: JaxBackend) -> None:
    model, trainer = _trainer(backend, "float32")
    objectives = trainer.run(np.arange(40, dtype=np.int64), 8, 0)
    assert objectives.dtype == np.float64 and objectives.shape == (5,)
    variables = model.read_variables()
    assert all(v.dtype == np.float32 for v in variables.values())
    assert model.forward(_data(4)[0]).dtype == np.float32


def test_float64_subnormals_and_signed_zeros_round_trip(backend: JaxBackend) -> None:
    variables = mlpcore.initial_variables(SPEC, seed=2, dtype="float64")
    special = np.array([5e-324, -5e-324, -0.0, np.finfo(np.float64).max, 2.2e-308, 1.0, -1.0])
    variables["dense_0/bias"][:] = special
    model = backend.build(SPEC, variables, "float64")
    got = model.read_variables()["dense_0/bias"]
    assert got.tobytes() == special.tobytes()


@pytest.mark.parametrize("mode", ["portable", "native"])
def test_chunking_does_not_change_the_run(backend: JaxBackend, mode: str) -> None:
    """One call for 5 steps, or calls of 1, 3 and 1 steps (padded to capacities 1, 4, 1): the
    same steps, the same masks (picked by the step number), the same result."""
    order = np.random.default_rng(0).permutation(40).astype(np.int64)
    whole_model, whole = _trainer(backend, "float32", mode)
    want = whole.run(order, 8, 0)
    parts_model, parts = _trainer(backend, "float32", mode)
    got = np.concatenate([parts.run(order[:8], 8, 0),
                          parts.run(order[8:32], 8, 1),
                          parts.run(order[32:], 8, 4)])
    np.testing.assert_allclose(got, want, rtol=1e-6)
    for name, value in whole_model.read_variables().items():
        np.testing.assert_allclose(parts_model.read_variables()[name],
                                   value, rtol=1e-5, atol=1e-7)


def test_native_masks_follow_the_seed(backend: JaxBackend) -> None:
    order = np.arange(40, dtype=np.int64)
    runs = {seed: _trainer(backend, "float32", "native", seed)[1].run(order, 8, 0)
            for seed in (9, 10)}
    again = _trainer(backend, "float32", "native", 9)[1].run(order, 8, 0)
    np.testing.assert_array_equal(runs[9], again)
    assert not np.array_equal(runs[9], runs[10])


def test_chunks_of_any_length_compile_few_programs(backend: JaxBackend) -> None:
    assert [capacity_for(n) for n in (1, 2, 3, 4, 5, 8, 9, 100)] == [1, 2, 4, 4, 8, 8, 16, 128]
    _, trainer = _trainer(backend, "float32")
    order = np.arange(40, dtype=np.int64)
    step = 0
    for steps in (1, 2, 3, 4, 5):
        trainer.run(order[:steps * 8], 8, step)
        step += steps
    assert trainer.programs == {(1, 8), (2, 8), (4, 8), (8, 8)}


def test_a_write_between_chunks_is_seen_by_the_trainer(backend: JaxBackend) -> None:
    model, trainer = _trainer(backend, "float32")
    order = np.arange(16, dtype=np.int64)
    trainer.run(order, 8, 0)
    fresh = mlpcore.initial_variables(SPEC, seed=1, dtype="float32")
    model.write_variables(fresh)
    _, reference = _trainer(backend, "float32", momentum=0.0)
    # momentum is per trainer, so compare against plain SGD from the same state: the first
    # step after the write starts from `fresh` in both
    first_after_write = trainer.run(order[:8], 8, 2)
    first_of_reference = reference.run(order[:8], 8, 2)
    np.testing.assert_allclose(first_after_write, first_of_reference, rtol=1e-6)


def test_l1_gradient_at_zero_is_zero() -> None:
    grad = jax.grad(lambda w: jnp.sum(abs_with_sign_gradient(w)))
    np.testing.assert_array_equal(grad(jnp.array([-2.0, -0.0, 0.0, 3.0])), [-1.0, 0.0, 0.0, 1.0])
    assert jax.grad(lambda w: jnp.sum(jnp.abs(w)))(jnp.zeros(1))[0] == 1.0  # why it exists


def test_fit_matches_the_numpy_backend() -> None:
    x, y = _data(50)
    histories, outputs = [], []
    for name in ("jax", "numpy"):
        model = mlpcore.MLP(SPEC, backend=name, seed=4)
        histories.append(mlpcore.fit(model, (x, y), optimizer=mlpcore.SGD(0.2, 0.9),
                                     regulariser=mlpcore.L2(1e-3), epochs=3, batch_size=8).loss)
        outputs.append(model.predict(x))
    np.testing.assert_allclose(histories[0], histories[1], rtol=1e-5)
    np.testing.assert_allclose(outputs[0], outputs[1], rtol=1e-4, atol=1e-5)


def test_devices_are_jax_devices(backend: JaxBackend) -> None:
    """``platform:id`` names, the CPU first; a model's arrays are committed to its device."""
    devices = backend.devices()
    assert devices[0] == "cpu:0" and all(":" in name for name in devices)
    assert backend.device_name("cuda:1", None) == "gpu:1"
    model = mlpcore.MLP(SPEC, backend=backend, device="cpu")
    assert model.device == "cpu:0"
    x, y = _data(16)
    mlpcore.fit(model, (x, y), epochs=1, batch_size=4)
    native = model.native
    assert isinstance(native, JaxModel)
    assert {str(d) for w in native._weights for d in w.devices()} == {
        str(jax.devices("cpu")[0])}
    with pytest.raises(mlpcore.DeviceError, match="cpu:0"):
        mlpcore.MLP(SPEC, backend=backend, device="tpu:7")
