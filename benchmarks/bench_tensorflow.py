"""Goals: the TensorFlow backend within 1.1x of a whole-epoch ``tf.function`` loop, 3x Keras fit.

Two workloads, 55,000 rows (Fashion-MNIST when found, else random pixels of the same shape):

* notebook: 784-128 (sigmoid)-10, batch 64, SGD 0.1;
* dropout:  784-256 (relu)-10, dropout 0.5, batch 128, SGD 0.1 (native dropout in the
  comparison; the backend's portable masks are timed too).

Contenders, in the same process, alternating within each repeat, with the same threads
(``tf.config.threading``: 2 intra-op, 2 inter-op):

* ``backend``: ``mlpcore.fit(..., train_accuracy=False)`` with the TensorFlow backend;
* ``hand-written epoch``: what a careful person writes for speed: one ``tf.function`` per epoch,
  a ``tf.range`` loop over the batches, ``tf.gather``, ``tf.nn.bias_add`` (its gradient is one
  op, a broadcast ``+``'s several), ``tf.GradientTape``, and the update ``w -= lr·g`` as one
  fused ``ResourceApplyGradientDescent`` a variable (~6 % faster than ``assign_sub(lr * g)``,
  which writes ``lr·g`` to a temporary first, on the dropout workload; the backend does the same);
* ``per-step tf.function``: a Python loop calling a compiled step once per batch, to show the
  ~0.4 ms a call;
* ``keras fit``: Keras 3 ``model.fit`` (TensorFlow backend, default settings) with the same
  layers, initial weights, batch size and SGD learning rate. Its default ``jit_compile="auto"``
  is printed as Keras resolved it: without an accelerator Keras 3 turns it into ``False`` (a
  graph-mode ``tf.function`` per step), so the goal's ratio compares graph mode with graph mode;
  the ratio against the backend's opt-in XLA mode is printed for information;
* XLA (``jit_compile=True``) versions of the backend and of the hand-written loop, compile time
  reported separately;
* the matmul floor: only the five matrix products of each step's forward and backward pass
  (``x W1``, ``h W2``, ``δ2 W2ᵀ``, ``hᵀ δ2``, ``xᵀ δ1``), looped in one ``tf.function`` (the
  faster of XLA and plain graph).

The contenders run in the reverse order on odd repeats. The goals are judged on paired ratios
(``bench_stats``: the median over repeats of the ratio of two contenders timed in the same
repeat), which a slow phase of the machine cannot tilt; the ratio of the minima is printed next
to each.

Seconds per epoch exclude each contender's first epoch (tracing and compiling), which is
reported on its own (for the hand-written XLA loop, compile time is estimated as the first
epoch minus a steady one). Every contender starts from the same weights and the backend and the
hand-written loop see the same batches in the same order (their final weights are compared).

    python benchmarks/bench_tensorflow.py [--epochs 3] [--repeats 5] [--quick]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # this script's own process only

import numpy as np
import tensorflow as tf
from bench_data import LR, WORKLOADS, Workload, training_images
from bench_stats import paired_ratio

import mlpcore
from mlpcore.training import epoch_order

THREADS = 2
GOAL_VS_HANDWRITTEN = 1.1
GOAL_VS_KERAS = 3.0
N_TRAIN = 55_000
SEED = 0
VARIABLE_NAMES = ("dense_0/weights", "dense_0/bias", "dense_1/weights", "dense_1/bias")

Array = np.ndarray[Any, Any]


@dataclass
class Timing:
    """Seconds per epoch of one contender over the repeats, and its first (tracing) epochs."""

    label: str
    per_epoch: list[float] = field(default_factory=list)
    first: list[float] = field(default_factory=list)
    compile: list[float] = field(default_factory=list)
    note: str = ""

    def add(self, epoch_seconds: list[float], compile_seconds: float | None = None) -> None:
        self.first.append(epoch_seconds[0])
        self.per_epoch.append(float(np.mean(epoch_seconds[1:])))
        if compile_seconds is not None:
            self.compile.append(compile_seconds)

    @property
    def best(self) -> float:
        return min(self.per_epoch)

    def line(self) -> str:
        text = (f"  {self.label:<34} {min(self.per_epoch):7.3f} s/epoch "
                f"(min; max {max(self.per_epoch):.3f}), first epoch {min(self.first):.2f} s")
        if self.compile:
            text += f", compile {min(self.compile):.2f} s"
        return text + (f"  {self.note}" if self.note else "")


# ----------------------------------------------------------------------------------------------
# the mlpcore backend
# ----------------------------------------------------------------------------------------------

def time_backend(work: Workload, x: Array, y: Array, epochs: int, *, compiled: bool,
                 dropout_mode: str) -> tuple[list[float], float, int, dict[str, Array]]:
    """Per-epoch seconds, compile/trace seconds, trace count and final variables of one fit."""
    spec = mlpcore.MLPSpec(work.sizes, work.activation, work.dropout)  # type: ignore[arg-type]
    model = mlpcore.MLP(spec, backend="tensorflow", seed=SEED)
    captured: list[Any] = []
    start_training = model.native.start_training

    def capture(*args: Any) -> Any:
        captured.append(start_training(*args))
        return captured[-1]

    setattr(model.native, "start_training", capture)  # noqa: B010 - to read the trainer's counters
    history = mlpcore.fit(model, (x, y), epochs=epochs + 1, batch_size=work.batch,
                          optimizer=mlpcore.SGD(LR), seed=SEED, train_accuracy=False,
                          compiled=compiled, dropout_mode=dropout_mode)  # type: ignore[arg-type]
    trainer = captured.pop()
    # the patched attribute makes a cycle (model.native -> capture -> model.native's method):
    # undone, so that the trainer and its copy of the inputs are freed when this returns, as after
    # any fit, rather than at the next cyclic collection
    delattr(model.native, "start_training")
    return ([e.seconds for e in history.epochs], trainer.compile_seconds, trainer.trace_count,
            model.variables)


# ----------------------------------------------------------------------------------------------
# hand-written TensorFlow loops
# ----------------------------------------------------------------------------------------------

class HandWritten:
    """A careful hand-written TF trainer of a 2-layer MLP: variables, tape, a fused update."""

    def __init__(self, work: Workload, x: tf.Tensor, y: tf.Tensor, jit: bool):
        self.work = work
        self.x, self.y = x, y
        self.vars = [tf.Variable(tf.zeros(s)) for s in
                     ((work.sizes[0], work.sizes[1]), (work.sizes[1],),
                      (work.sizes[1], work.sizes[2]), (work.sizes[2],))]
        self.lr = tf.constant(LR, tf.float32)
        self.act = tf.math.sigmoid if work.activation == "sigmoid" else tf.nn.relu
        self.traces = 0
        signature = [tf.TensorSpec([None, None], tf.int64), tf.TensorSpec([], tf.int64)]
        self.epoch_fn = tf.function(self._epoch, input_signature=signature, jit_compile=jit)
        self.step_fn = tf.function(self._step, input_signature=[
            tf.TensorSpec([None], tf.int64), tf.TensorSpec([], tf.int64)])

    def load(self, values: dict[str, Array]) -> None:
        for v, name in zip(self.vars, ("dense_0/weights", "dense_0/bias", "dense_1/weights",
                                       "dense_1/bias"), strict=True):
            v.assign(values[name])

    def _step(self, rows: tf.Tensor, step: tf.Tensor) -> tf.Tensor:
        w1, b1, w2, b2 = self.vars
        xb = tf.gather(self.x, rows)
        yb = tf.gather(self.y, rows)
        with tf.GradientTape() as tape:
            h = self.act(tf.nn.bias_add(tf.matmul(xb, w1), b1))
            if self.work.dropout > 0:
                h = tf.nn.experimental.stateless_dropout(
                    h, self.work.dropout, seed=tf.stack([tf.constant(SEED, tf.int64), step]),
                    rng_alg="philox")
            logits = tf.nn.bias_add(tf.matmul(h, w2), b2)
            loss = tf.reduce_mean(
                tf.nn.sparse_softmax_cross_entropy_with_logits(labels=yb, logits=logits))
        for v, g in zip(self.vars, tape.gradient(loss, self.vars), strict=True):
            tf.raw_ops.ResourceApplyGradientDescent(var=v.handle, alpha=self.lr, delta=g)
        return loss

    def _epoch(self, order: tf.Tensor, first_step: tf.Tensor) -> tf.Tensor:
        self.traces += 1
        total = tf.constant(0.0)
        n = tf.shape(order)[0]
        for j in tf.range(n):
            total += self._step(order[j], first_step + tf.cast(j, tf.int64))
        return total / tf.cast(n, tf.float32)

    def epoch(self, order: Array, first_step: int) -> None:
        """One epoch in at most two calls: the full batches, then the short remainder."""
        b = self.work.batch
        full, rest = divmod(len(order), b)
        self.epoch_fn(tf.constant(order[:full * b].reshape(full, b)),
                      tf.constant(first_step, tf.int64))
        if rest:
            self.epoch_fn(tf.constant(order[full * b:].reshape(1, rest)),
                          tf.constant(first_step + full, tf.int64))

    def epoch_per_step(self, order: Array, first_step: int) -> None:
        """The same epoch as a Python loop calling a per-step ``tf.function``."""
        b = self.work.batch
        rows = tf.constant(order)
        for j, start in enumerate(range(0, len(order), b)):
            self.step_fn(rows[start:start + b], tf.constant(first_step + j, tf.int64))


def time_epochs(run_epoch: Callable[[Array, int], None], n_rows: int, batch: int,
                epochs: int) -> list[float]:
    steps = -(-n_rows // batch)
    seconds = []
    for epoch in range(epochs + 1):
        order = epoch_order(SEED, epoch, n_rows)
        started = time.perf_counter()
        run_epoch(order, epoch * steps)
        seconds.append(time.perf_counter() - started)
    return seconds


def matmul_floor(work: Workload, n_rows: int, epochs: int, jit: bool) -> list[float]:
    """Seconds per epoch of only the five matrix products of every step, looped in one call."""
    d0, d1, d2 = work.sizes
    b = work.batch
    rng = np.random.default_rng(1)
    x = tf.constant(rng.random((b, d0), dtype=np.float32))
    w1 = tf.constant(rng.random((d0, d1), dtype=np.float32))
    w2 = tf.constant(rng.random((d1, d2), dtype=np.float32))
    delta2 = tf.constant(rng.random((b, d2), dtype=np.float32))
    steps = -(-n_rows // b)

    def loop_body(n: tf.Tensor) -> tf.Tensor:
        def body(j: tf.Tensor, g1: tf.Tensor, g2: tf.Tensor) -> tuple[tf.Tensor, ...]:
            h = tf.matmul(x + g1[0, 0], w1)  # the carried value keeps every step alive
            z = tf.matmul(h, w2)
            d1 = tf.matmul(delta2 + z[0, 0], w2, transpose_b=True)
            return (j + 1, tf.matmul(x, d1, transpose_a=True) * 0.0,
                    tf.matmul(h, delta2, transpose_a=True))
        out = tf.while_loop(lambda j, *_: j < n, body,
                            (tf.constant(0), tf.zeros((d0, d1)), tf.zeros((d1, d2))),
                            parallel_iterations=1)
        return out[2]

    loop = tf.function(loop_body, jit_compile=jit)
    seconds = []
    for _ in range(epochs + 1):
        started = time.perf_counter()
        loop(tf.constant(steps)).numpy()
        seconds.append(time.perf_counter() - started)
    return seconds


# ----------------------------------------------------------------------------------------------
# Keras 3 model.fit
# ----------------------------------------------------------------------------------------------

def time_keras(work: Workload, x: Array, y: Array, start: dict[str, Array],
               epochs: int) -> tuple[list[float], Any]:
    """Seconds of each of ``epochs + 1`` epochs of ``model.fit``, and the model's resolved
    ``jit_compile`` (Keras's default ``"auto"``, which is ``False`` on a CPU-only machine)."""
    import keras

    layers: list[Any] = [keras.Input((work.sizes[0],)),
                         keras.layers.Dense(work.sizes[1], activation=work.activation)]
    if work.dropout > 0:
        layers.append(keras.layers.Dropout(work.dropout))
    layers.append(keras.layers.Dense(work.sizes[2]))
    model = keras.Sequential(layers)
    model.layers[0].set_weights([start["dense_0/weights"], start["dense_0/bias"]])
    model.layers[-1].set_weights([start["dense_1/weights"], start["dense_1/bias"]])
    model.compile(optimizer=keras.optimizers.SGD(LR),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    stamps: list[float] = []

    class Stamp(keras.callbacks.Callback):  # type: ignore[misc]
        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            stamps.append(time.perf_counter())

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            stamps.append(time.perf_counter())

    model.fit(x, y, batch_size=work.batch, epochs=epochs + 1, verbose=0, callbacks=[Stamp()])
    return [stamps[i + 1] - stamps[i] for i in range(0, len(stamps), 2)], model.jit_compile


# ----------------------------------------------------------------------------------------------

def bench(work: Workload, x: Array, y: Array, epochs: int, repeats: int) -> bool:
    n = len(y)
    xt, yt = tf.constant(x), tf.constant(y.astype(np.int64))
    native = "native" if work.dropout > 0 else "portable"
    backend = Timing(f"backend ({native} dropout)" if work.dropout else "backend")
    portable = Timing("backend (portable dropout)")
    backend_xla = Timing("backend, XLA")
    hand = Timing("hand-written epoch tf.function")
    hand_xla = Timing("hand-written epoch, XLA")
    per_step = Timing("Python loop, per-step tf.function")
    keras_fit = Timing("keras 3 model.fit")
    floor = Timing("matmul floor (best of XLA, graph)")
    loop = HandWritten(work, xt, yt, jit=False)
    loop_xla = HandWritten(work, xt, yt, jit=True)
    spec = mlpcore.MLPSpec(work.sizes, work.activation, work.dropout)  # type: ignore[arg-type]
    start = mlpcore.MLP(spec, backend="numpy", seed=SEED).variables
    traces: list[int] = []
    drift = 0.0
    finals: dict[str, list[Array]] = {}  # the weights after the last backend / hand-written run

    def run_backend() -> None:
        seconds, compile_s, count, ours = time_backend(work, x, y, epochs, compiled=False,
                                                       dropout_mode=native)
        backend.add(seconds, compile_s)
        traces.append(count)
        finals["backend"] = [ours[name] for name in VARIABLE_NAMES]

    def run_portable() -> None:
        seconds, compile_s, _, _ = time_backend(work, x, y, epochs, compiled=False,
                                                dropout_mode="portable")
        portable.add(seconds, compile_s)

    def run_hand() -> None:
        loop.load(start)
        hand.add(time_epochs(loop.epoch, n, work.batch, epochs))
        finals["hand"] = [v.numpy() for v in loop.vars]

    def run_backend_xla() -> None:
        seconds, compile_s, _, _ = time_backend(work, x, y, epochs, compiled=True,
                                                dropout_mode=native)
        backend_xla.add(seconds, compile_s)

    def run_hand_xla() -> None:
        loop_xla.load(start)
        seconds = time_epochs(loop_xla.epoch, n, work.batch, epochs)
        hand_xla.add(seconds, max(0.0, seconds[0] - float(np.mean(seconds[1:]))))

    def run_per_step() -> None:
        loop.load(start)
        per_step.add(time_epochs(loop.epoch_per_step, n, work.batch, epochs))

    def run_keras() -> None:
        keras_seconds, keras_jit = time_keras(work, x, y, start, epochs)
        keras_fit.add(keras_seconds)
        keras_fit.note = f"(jit_compile={keras_jit})"

    def run_floor() -> None:
        floor.add(min(matmul_floor(work, n, epochs, jit=True),
                      matmul_floor(work, n, epochs, jit=False), key=lambda s: min(s[1:])))

    contenders = [run_backend, *([run_portable] if work.dropout else []), run_hand,
                  run_backend_xla, run_hand_xla, run_per_step, run_keras, run_floor]
    for repeat in range(repeats):
        # alternate the order, so that a slowing or quickening machine favours no one
        for run in contenders if repeat % 2 == 0 else contenders[::-1]:
            run()
        if not work.dropout:  # same batches, same maths: the weights must agree
            drift = max(drift, *(float(np.abs(ours - theirs).max()) for ours, theirs in zip(
                finals["backend"], finals["hand"], strict=True)))
        print(f"  repeat {repeat}: backend {backend.per_epoch[-1]:.3f}, hand-written "
              f"{hand.per_epoch[-1]:.3f}, keras {keras_fit.per_epoch[-1]:.3f} s/epoch",
              flush=True)
    steps = -(-n // work.batch)
    per_step.note = (f"(~{1e3 * (per_step.best - hand.best) / steps:.2f} ms a step more than "
                     f"the in-graph loop)")
    backend.note = f"traces per fit: {max(traces)}"
    for timing in (backend, portable, hand, per_step, keras_fit, backend_xla, hand_xla, floor):
        if timing.per_epoch:
            print(timing.line())
    if not work.dropout:
        print(f"  max weight difference backend vs hand-written after the same epochs: "
              f"{drift:.2e}")
    vs_hand = paired_ratio(backend.per_epoch, hand.per_epoch)
    vs_keras = paired_ratio(keras_fit.per_epoch, backend.per_epoch)
    print(f"  ratio backend / hand-written epoch: {vs_hand.describe()} "
          f"(goal <= {GOAL_VS_HANDWRITTEN})")
    print(f"  ratio keras fit / backend:          {vs_keras.describe()} (goal >= {GOAL_VS_KERAS})")
    print(f"  ratio keras fit / backend XLA:      {keras_fit.best / backend_xla.best:.2f} "
          f"(the opt-in XLA mode; for information)")
    print(f"  ratio per-step loop / hand-written: {per_step.best / hand.best:.2f}")
    print(f"  ratio backend XLA / matmul floor:   {backend_xla.best / floor.best:.2f}; "
          f"hand-written XLA / floor: {hand_xla.best / floor.best:.2f}; "
          f"backend XLA / hand-written XLA: {backend_xla.best / hand_xla.best:.2f}")
    ok = (vs_hand.median <= GOAL_VS_HANDWRITTEN and vs_keras.median >= GOAL_VS_KERAS
          and max(traces) <= 2)
    print(f"  {work.name}: {'PASS' if ok else 'FAIL'}")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per contender")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: 11,000 rows, 1 timed epoch, 1 repeat")
    parser.add_argument("--workload", choices=[w.name for w in WORKLOADS.values()], action="append")
    args = parser.parse_args()
    tf.config.threading.set_intra_op_parallelism_threads(THREADS)
    tf.config.threading.set_inter_op_parallelism_threads(THREADS)
    n_rows, epochs, repeats = (11_000, 1, 1) if args.quick else (N_TRAIN, args.epochs,
                                                                 args.repeats)
    x, y, source = training_images(n_rows)
    print(f"TensorFlow {tf.__version__}, {THREADS} intra-op / {THREADS} inter-op threads; "
          f"{len(y)} rows of {source}; {epochs} timed epoch(s) after 1 warm-up x {repeats} "
          f"repeat(s); SGD {LR}")
    ok = True
    for work in WORKLOADS.values():
        if args.workload and work.name not in args.workload:
            continue
        print(f"{work.name}: {'-'.join(map(str, work.sizes))} {work.activation}, dropout "
              f"{work.dropout}, batch {work.batch}")
        ok = bench(work, x, y, epochs, repeats) and ok
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
