"""The dense layer's product ``z = x Wᵀ + b``, and the CPU kernel that computes it.

Shapes: ``x`` (N, d_in), ``W`` (d_out, d_in) (``nn.Linear.weight``'s layout), ``b`` (d_out,),
``z`` (N, d_out). Its derivatives, for an upstream gradient ``g = dJ/dz`` (N, d_out)::

    dJ/dx = g W          (N, d_in)         dJ/dW = gᵀ x         (d_out, d_in)
    dJ/db = Σ_n g_n      (d_out,)

Two kernels compute the three products:

* ``"aten"``: ``torch.nn.functional.linear``, torch's default, which runs on the BLAS torch was
  built with (MKL in the x86 wheels), differentiated by autograd's own ``AddmmBackward``;
* ``"onednn"``: oneDNN's inner-product primitive (``torch.ops.mkldnn._linear_pointwise``, the op
  torch.compile emits for CPU linears), inside :class:`OneDnnLinear`, a
  ``torch.autograd.Function`` whose backward is the formulas above, each product again in
  oneDNN. Autograd still chains the layers, activations, dropout and loss.

Both are IEEE float32 (no reduced-precision maths): their results differ from a float64
reference by 2e-7 (aten) and 4e-7 (oneDNN) relative.

Which is faster depends on the CPU. Measured per call, 2 threads, the same operands again and
again, on three 2-core machines: an AMD EPYC with AVX-512 (where MKL's float32 GEMM runs at half
oneDNN's rate), an AMD EPYC with AVX2 only and an Intel Xeon with AVX-512 (on both, MKL is the
faster):

======================  ===================  ===================  ===================  ======
product (N·d_in·d_out)  AMD AVX-512:         AMD AVX2:            Intel AVX-512:       MACs
                        aten / oneDNN        aten / oneDNN        aten / oneDNN
======================  ===================  ===================  ===================  ======
128 · 784 · 256         250 / 123 µs         458 / 507 µs         270 / 296 µs         25.7 M
64 · 784 · 128          69 / 43 µs           152 / 179 µs         86 / 100 µs          6.4 M
128 · 256 · 10          10 / 15 µs           44 / 74 µs           15 / 36 µs           0.33 M
======================  ===================  ===================  ===================  ======

oneDNN also pays ~12 µs a call to find its primitive, and inside a training loop, where every step
brings a new batch, its gain is smaller: on the AMD AVX-512 machine a whole epoch of a
hand-written eager loop (min of 8) with the hidden layer on aten / on oneDNN took 0.259 / 0.270 s
at 64 · 784 · 128 (6.4 M), 0.195 / 0.170 s at 128 · 784 · 128 (12.8 M), 0.45 / 0.41 s at
64 · 784 · 256 (12.8 M) and 0.387 / 0.310 s at 128 · 784 · 256 (25.7 M). On the Intel machine
the same loop (min of 5) was faster on aten at both benchmark sizes: 0.466 / 0.600 s at
64 · 784 · 128 and 0.581 / 0.663 s at 128 · 784 · 256.

So by default (``auto``) :func:`dense` uses oneDNN only on an AMD CPU for which torch reports
AVX-512 (:func:`onednn_preferred`), and there only for a float32 product of at least
:data:`ONEDNN_MIN_MACS` multiply-adds, between the measured 6.4 M (aten faster) and 12.8 M
(oneDNN faster). Everything else is aten: other CPUs (and any CPU whose vendor cannot be
read), float64 (oneDNN's primitive takes none), small products, torch builds without oneDNN.
``MLPCORE_TORCH_LINEAR`` in the environment overrides the choice: ``aten`` for every product,
``onednn`` for every float32 CPU product oneDNN can take, whatever its size and the CPU. It is
read on every call of :func:`dense` without a ``kernel``, and by the trainer once per chunk (see
:func:`dense`), so it also applies to a running model. Under ``torch.compile`` (the
backend's compiled mode) it is always aten: Inductor chooses its own kernels, and compiling a
step that calls this op failed inside Inductor (torch 2.13).
"""

from __future__ import annotations

import functools
import os
from typing import Any, Literal

import torch
from torch.nn import functional

LinearKernel = Literal["aten", "onednn"]

ONEDNN_MIN_MACS = 1 << 23
"""Smallest product (``N · d_in · d_out`` multiply-adds, 8.4 M) sent to oneDNN: in a training
loop the measured crossover lies between 6.4 M (aten faster) and 12.8 M (oneDNN faster)."""

ONEDNN_CPU_CAPABILITIES = frozenset({"AVX512"})
"""``torch.backends.cpu.get_cpu_capability()`` values on which ``auto`` may send large products to
oneDNN: on AVX2 MKL was the faster."""

ONEDNN_CPU_VENDORS = frozenset({"AuthenticAMD"})
"""CPU vendor ids (``vendor_id`` in ``/proc/cpuinfo``) on which ``auto`` may send large products
to oneDNN: on an Intel Xeon with AVX-512 MKL was the faster."""

CPUINFO = "/proc/cpuinfo"

ENVIRONMENT_VARIABLE = "MLPCORE_TORCH_LINEAR"
"""``auto`` (or unset) chooses by CPU and size as above; ``aten`` and ``onednn`` force a kernel."""

REQUESTS = ("auto", "aten", "onednn")


@functools.cache
def onednn_available() -> bool:
    """Whether this torch build has oneDNN and its inner-product op (x86 and ARM CPU wheels)."""
    available = bool(torch.backends.mkldnn.is_available())  # type: ignore[no-untyped-call]
    return available and hasattr(torch.ops.mkldnn, "_linear_pointwise")


def cpu_vendor(cpuinfo: str = CPUINFO) -> str | None:
    """The first ``vendor_id`` in ``cpuinfo`` (Linux's ``/proc/cpuinfo``), e.g.
    ``"AuthenticAMD"`` or ``"GenuineIntel"``; ``None`` where it cannot be read (other systems)."""
    try:
        with open(cpuinfo, encoding="ascii", errors="replace") as lines:
            for line in lines:
                key, _, value = line.partition(":")
                if key.strip() == "vendor_id":
                    return value.strip() or None
    except OSError:
        return None
    return None


@functools.cache
def onednn_preferred() -> bool:
    """Whether ``auto`` uses oneDNN for large products here: oneDNN is available, the CPU's
    vendor is in :data:`ONEDNN_CPU_VENDORS` and torch reports a CPU capability in
    :data:`ONEDNN_CPU_CAPABILITIES` (``ATEN_CPU_CAPABILITY`` can lower it)."""
    return (onednn_available() and cpu_vendor() in ONEDNN_CPU_VENDORS
            and torch.backends.cpu.get_cpu_capability() in ONEDNN_CPU_CAPABILITIES)


def requested_kernel() -> str:
    """The value of ``MLPCORE_TORCH_LINEAR`` (``"auto"`` when unset); raises for anything else."""
    value = os.environ.get(ENVIRONMENT_VARIABLE, "auto").strip().lower() or "auto"
    if value not in REQUESTS:
        raise ValueError(f"{ENVIRONMENT_VARIABLE} must be one of "
                         f"{', '.join(map(repr, REQUESTS))}, got "
                         f"{os.environ[ENVIRONMENT_VARIABLE]!r}")
    return value


def kernel_for(x: torch.Tensor, weight: torch.Tensor) -> LinearKernel:
    """The kernel :func:`dense` uses for ``x`` (N, d_in) and ``weight`` (d_out, d_in)."""
    if x.dim() != 2:
        return "aten"
    return kernel_for_rows(x.shape[0], x.dtype, x.device, weight)


def kernel_for_rows(n_rows: int, dtype: torch.dtype, device: torch.device,
                    weight: torch.Tensor) -> LinearKernel:
    """The kernel :func:`dense` uses for an input of ``n_rows`` rows of ``dtype`` on ``device``
    times ``weight`` (d_out, d_in): :func:`kernel_for` without an input tensor at hand."""
    request = requested_kernel()
    if (request == "aten" or torch.compiler.is_compiling() or dtype != torch.float32
            or weight.dtype != torch.float32 or device.type != "cpu"
            or not onednn_available()):
        return "aten"
    if request == "onednn":
        return "onednn"
    macs = n_rows * weight.shape[0] * weight.shape[1]
    return "onednn" if macs >= ONEDNN_MIN_MACS and onednn_preferred() else "aten"


def _inner_product(a: torch.Tensor, b: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``a bᵀ (+ bias)`` by oneDNN: ``a`` (M, K), ``b`` (N, K), ``bias`` (N,); (M, N)."""
    result: torch.Tensor = torch.ops.mkldnn._linear_pointwise(a, b, bias, "none", [], "")
    return result


class OneDnnLinear(torch.autograd.Function):
    """``x Wᵀ + b`` with the forward and backward products in oneDNN (differentiable once)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor,
                bias: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        return _inner_product(x.contiguous(), weight, bias)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, weight = ctx.saved_tensors
        grad = grad.contiguous()  # autograd may hand in an expanded (stride 0) gradient
        needs_x, needs_weight, needs_bias = ctx.needs_input_grad
        grad_x = _inner_product(grad, weight.t(), None) if needs_x else None  # g W
        grad_weight = _inner_product(grad.t(), x.t(), None) if needs_weight else None  # gᵀ x
        grad_bias = grad.sum(0) if needs_bias else None
        return grad_x, grad_weight, grad_bias


def dense(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
          kernel: LinearKernel | None = None) -> torch.Tensor:
    """``x Wᵀ + b`` (N, d_out), autograd-differentiable, by ``kernel``: the choice
    :func:`kernel_for` makes for this product, made now when ``None``. A caller that runs many
    products of one shape (the trainer, once per chunk and batch size) passes it in, saving the
    choice's few microseconds a product."""
    if (kernel or kernel_for(x, weight)) == "onednn":
        result: torch.Tensor = OneDnnLinear.apply(x, weight, bias)  # type: ignore[no-untyped-call]
        return result
    return functional.linear(x, weight, bias)
