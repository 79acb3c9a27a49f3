"""The torch backend's dense product: kernel choice, oneDNN values and gradients, and training.

The rest of the suite uses small layers, which stay on aten. Here ``MLPCORE_TORCH_LINEAR=onednn``
sends every float32 product to oneDNN, on whatever CPU runs the tests, and the ``auto`` choice is
tested with the CPU's vendor and capability replaced.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from mlpcore import MLP, SGD, MLPSpec, fit  # noqa: E402
from mlpcore_torch import linear  # noqa: E402
from mlpcore_torch.linear import (  # noqa: E402
    ENVIRONMENT_VARIABLE,
    ONEDNN_CPU_CAPABILITIES,
    ONEDNN_CPU_VENDORS,
    ONEDNN_MIN_MACS,
    OneDnnLinear,
    cpu_vendor,
    dense,
    kernel_for,
)
from mlpcore_torch.network import forward  # noqa: E402

needs_onednn = pytest.mark.skipif(not linear.onednn_available(),
                                  reason="this torch build has no oneDNN inner-product op")

# float32 products of a few hundred terms, against a float64 reference
RTOL, ATOL = 1e-5, 1e-5


@pytest.fixture
def all_onednn(monkeypatch: pytest.MonkeyPatch) -> None:
    """Send every float32 product to oneDNN, however small and whatever the CPU."""
    monkeypatch.setenv(ENVIRONMENT_VARIABLE, "onednn")


def _tensors(n: int, d_in: int, d_out: int, dtype: Any = None,
             seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    dtype = dtype or torch.float32
    return (torch.rand(n, d_in, generator=g, dtype=dtype),
            torch.randn(d_out, d_in, generator=g, dtype=dtype) * 0.1,
            torch.randn(d_out, generator=g, dtype=dtype))


# -- which kernel -------------------------------------------------------------------------------

@needs_onednn
def test_on_a_preferred_cpu_large_float32_products_go_to_onednn_small_ones_stay_on_aten(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENVIRONMENT_VARIABLE, raising=False)
    monkeypatch.setattr(linear, "onednn_preferred", lambda: True)
    x, w, _ = _tensors(128, 784, 256)
    assert ONEDNN_MIN_MACS <= 128 * 784 * 256
    assert kernel_for(x, w) == "onednn"
    small_x, small_w, _ = _tensors(128, 256, 10)
    assert ONEDNN_MIN_MACS > 128 * 256 * 10
    assert kernel_for(small_x, small_w) == "aten"
    assert kernel_for(x.double(), w.double()) == "aten"  # oneDNN's primitive takes no float64


def test_on_other_cpus_auto_keeps_every_product_on_aten(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENVIRONMENT_VARIABLE, raising=False)
    monkeypatch.setattr(linear, "onednn_preferred", lambda: False)
    x, w, _ = _tensors(128, 784, 256)
    assert kernel_for(x, w) == "aten"


@needs_onednn
@pytest.mark.parametrize(("vendor", "capability", "preferred"),
                         [("AuthenticAMD", "AVX512", True), ("AuthenticAMD", "AVX2", False),
                          ("AuthenticAMD", "DEFAULT", False), ("GenuineIntel", "AVX512", False),
                          ("GenuineIntel", "AVX2", False), (None, "AVX512", False)])
def test_onednn_is_preferred_only_on_the_cpus_it_was_measured_faster_on(
        monkeypatch: pytest.MonkeyPatch, vendor: str | None, capability: str,
        preferred: bool) -> None:
    monkeypatch.setattr(linear, "cpu_vendor", lambda: vendor)
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: capability)
    linear.onednn_preferred.cache_clear()
    try:
        assert linear.onednn_preferred() is preferred
        assert (vendor in ONEDNN_CPU_VENDORS and capability in ONEDNN_CPU_CAPABILITIES) is preferred
    finally:
        linear.onednn_preferred.cache_clear()


def test_cpu_vendor_reads_the_first_vendor_id_and_is_none_where_there_is_none(
        tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\n\n"
                       "processor\t: 1\nvendor_id\t: AuthenticAMD\n")
    assert cpu_vendor(str(cpuinfo)) == "AuthenticAMD"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: some ARM core\n")
    assert cpu_vendor(str(cpuinfo)) is None
    cpuinfo.write_text("vendor_id\t:\n")
    assert cpu_vendor(str(cpuinfo)) is None
    assert cpu_vendor(str(tmp_path / "missing")) is None


@needs_onednn
def test_the_environment_variable_forces_a_kernel_and_is_checked(
        monkeypatch: pytest.MonkeyPatch) -> None:
    x, w, b = _tensors(128, 784, 256)
    monkeypatch.setattr(linear, "onednn_preferred", lambda: True)
    monkeypatch.setenv(ENVIRONMENT_VARIABLE, "aten")
    assert kernel_for(x, w) == "aten"
    assert torch.equal(dense(x, w, b), torch.nn.functional.linear(x, w, b))
    monkeypatch.setattr(linear, "onednn_preferred", lambda: False)
    monkeypatch.setenv(ENVIRONMENT_VARIABLE, " ONEDNN ")
    small_x, small_w, _ = _tensors(2, 3, 4)
    assert kernel_for(small_x, small_w) == "onednn"
    assert kernel_for(small_x.double(), small_w.double()) == "aten"  # float64: oneDNN takes none
    monkeypatch.setenv(ENVIRONMENT_VARIABLE, "fast")
    with pytest.raises(ValueError, match=f"{ENVIRONMENT_VARIABLE}.*'fast'"):
        kernel_for(x, w)


def test_without_onednn_every_product_is_aten(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(linear, "onednn_available", lambda: False)
    x, w, b = _tensors(128, 784, 256)
    assert kernel_for(x, w) == "aten"
    monkeypatch.setenv(ENVIRONMENT_VARIABLE, "onednn")
    assert kernel_for(x, w) == "aten"
    assert torch.equal(dense(x, w, b), torch.nn.functional.linear(x, w, b))


# -- values and gradients -----------------------------------------------------------------------

@needs_onednn
@pytest.mark.parametrize("shape", [(1, 3, 2), (7, 13, 5), (128, 784, 256)])
@pytest.mark.usefixtures("all_onednn")
def test_onednn_product_and_gradients_match_float64_autograd(shape: tuple[int, int, int]) -> None:
    x, w, b = _tensors(*shape)
    upstream = torch.randn(shape[0], shape[2], generator=torch.Generator().manual_seed(1))
    leaves = [t.clone().requires_grad_(True) for t in (x, w, b)]
    z = OneDnnLinear.apply(*leaves)
    (z * upstream).sum().backward()

    ref = [t.double().requires_grad_(True) for t in (x, w, b)]
    z_ref = torch.nn.functional.linear(*ref)
    (z_ref * upstream.double()).sum().backward()

    assert z.dtype == torch.float32
    torch.testing.assert_close(z.double(), z_ref, rtol=RTOL, atol=ATOL)
    for got, want in zip(leaves, ref, strict=True):
        assert got.grad is not None and want.grad is not None
        torch.testing.assert_close(got.grad.double(), want.grad, rtol=RTOL, atol=ATOL)


@needs_onednn
@pytest.mark.usefixtures("all_onednn")
def test_onednn_backward_skips_unneeded_gradients_and_takes_expanded_ones() -> None:
    x, w, b = _tensors(16, 8, 4)
    weight = w.clone().requires_grad_(True)
    z = dense(x, weight, b)  # neither x nor b needs a gradient
    assert z.grad_fn is not None and "OneDnnLinear" in type(z.grad_fn).__name__
    z.sum().backward()  # the upstream gradient is an expanded (stride 0) tensor of ones
    assert weight.grad is not None
    torch.testing.assert_close(weight.grad, torch.ones(16, 4).t() @ x)


@needs_onednn
@pytest.mark.usefixtures("all_onednn")
def test_onednn_takes_non_contiguous_inputs() -> None:
    x, w, b = _tensors(9, 6, 5)
    x_strided = x.t().contiguous().t()
    assert not x_strided.is_contiguous()
    torch.testing.assert_close(dense(x_strided, w, b), torch.nn.functional.linear(x, w, b))


@needs_onednn
@pytest.mark.usefixtures("all_onednn")
def test_in_place_activation_after_an_onednn_product_keeps_gradients_right() -> None:
    x, w, b = _tensors(32, 20, 12)
    weights = [w.clone().requires_grad_(True)]
    biases = [b.clone().requires_grad_(True)]
    for activation in ("relu", "sigmoid", "tanh"):
        out = forward(activation, [*weights, torch.eye(12)], [*biases, torch.zeros(12)], x)
        (grad_w,) = torch.autograd.grad(out.square().sum(), weights)
        w64 = w.double().requires_grad_(True)
        act = {"relu": torch.relu, "sigmoid": torch.sigmoid, "tanh": torch.tanh}[activation]
        want = act(torch.nn.functional.linear(x.double(), w64, b.double()))
        (grad_ref,) = torch.autograd.grad(want.square().sum(), [w64])
        torch.testing.assert_close(grad_w.double(), grad_ref, rtol=RTOL, atol=ATOL)


# -- through the backend ------------------------------------------------------------------------

def _data(n: int, d: int, k: int) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    rng = np.random.default_rng(3)
    return rng.random((n, d), dtype=np.float32), rng.integers(0, k, n)


@needs_onednn
@pytest.mark.usefixtures("all_onednn")
def test_torch_gradients_on_onednn_match_the_numpy_backend() -> None:
    spec = MLPSpec((30, 20, 10, 5), activation="sigmoid")
    x, y = _data(40, 30, 5)
    ours = MLP(spec, backend="torch", seed=2)
    reference = MLP(spec, backend="numpy", seed=2)
    loss, grads = ours.loss_and_gradients(x, y)
    loss_ref, grads_ref = reference.loss_and_gradients(x, y)
    assert loss == pytest.approx(loss_ref, rel=1e-6)
    for name, value in grads_ref.items():
        np.testing.assert_allclose(grads[name], value, rtol=1e-4, atol=1e-6, err_msg=name)


@needs_onednn
@pytest.mark.usefixtures("all_onednn")
def test_predict_on_onednn_runs_under_inference_mode_and_matches_the_numpy_backend() -> None:
    spec = MLPSpec((30, 20, 5), activation="tanh")
    x, _ = _data(50, 30, 5)
    ours = MLP(spec, backend="torch", seed=4)
    want = MLP(spec, backend="numpy", seed=4).predict(x)
    np.testing.assert_allclose(ours.predict(x), want, rtol=1e-5, atol=1e-6)


@needs_onednn
def test_training_with_onednn_follows_the_aten_trajectory(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The same fit with every product on oneDNN and on aten differs only by float32 rounding."""
    spec = MLPSpec((784, 128, 10), activation="relu", dropout=0.2)
    x, y = _data(512, 784, 10)
    runs = {}
    for kernel in ("onednn", "aten"):
        monkeypatch.setenv(ENVIRONMENT_VARIABLE, kernel)
        model = MLP(spec, backend="torch", seed=5)
        history = fit(model, (x, y), epochs=2, batch_size=128, optimizer=SGD(0.1), seed=5)
        runs[kernel] = ([e.loss for e in history.epochs], model.variables)
    np.testing.assert_allclose(runs["onednn"][0], runs["aten"][0], rtol=1e-4)
    for name, value in runs["aten"][1].items():
        np.testing.assert_allclose(runs["onednn"][1][name], value, rtol=1e-3, atol=1e-5,
                                   err_msg=name)


@needs_onednn
def test_the_trainer_chooses_kernels_once_per_chunk_and_batch_size_and_rereads_the_variable(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from mlpcore.backend import TrainingConfig
    from mlpcore_torch import training

    chosen: list[tuple[int, str]] = []
    choose = training.kernel_for_rows

    def counting(n_rows: int, dtype: Any, device: Any, weight: torch.Tensor) -> Any:
        kernel = choose(n_rows, dtype, device, weight)
        chosen.append((n_rows, kernel))
        return kernel

    monkeypatch.setattr(training, "kernel_for_rows", counting)
    per_product: list[int] = []
    choose_per_product = linear.kernel_for

    def counting_per_product(x: torch.Tensor, weight: torch.Tensor) -> Any:
        per_product.append(1)
        return choose_per_product(x, weight)

    monkeypatch.setattr(linear, "kernel_for", counting_per_product)
    spec = MLPSpec((30, 20, 5), activation="relu")
    x, y = _data(50, 30, 5)
    model = MLP(spec, backend="torch", seed=1)
    trainer = model.native.start_training(
        TrainingConfig(loss="softmax_cross_entropy", optimizer=SGD(0.1)), x, y)
    order = np.arange(50, dtype=np.int64)
    monkeypatch.setenv(ENVIRONMENT_VARIABLE, "aten")
    trainer.run(order, 16, 0)  # 3 batches of 16 and one of 2: two sizes, two layers each
    assert chosen == [(16, "aten"), (16, "aten"), (2, "aten"), (2, "aten")]
    chosen.clear()
    onednn_products: list[int] = []
    apply = OneDnnLinear.apply

    def counting_apply(*args: Any) -> Any:
        onednn_products.append(1)
        return apply(*args)

    monkeypatch.setattr(OneDnnLinear, "apply", counting_apply)
    monkeypatch.setenv(ENVIRONMENT_VARIABLE, "onednn")
    trainer.run(order, 16, 4)
    assert chosen == [(16, "onednn"), (16, "onednn"), (2, "onednn"), (2, "onednn")]
    assert len(onednn_products) == 4 * 2  # the choice reaches every product: 4 steps, 2 layers
    assert per_product == []  # no product chose again
