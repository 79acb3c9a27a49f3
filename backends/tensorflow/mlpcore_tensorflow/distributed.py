"""Data-parallel training on tf.distribute (:mod:`mlpcore.distributed`): a
``tf.distribute.MultiWorkerMirroredStrategy`` across processes, configured by ``TF_CONFIG``
(TensorFlow's own mechanism), one CPU replica per worker, and one collective all-reduce of
``share · (objective, gradients)`` per step (``ReplicaContext.all_reduce`` inside
``strategy.run``); or a ``tf.distribute.MirroredStrategy`` over several devices of one process
(:func:`mirrored`), the same all-reduce between its replicas.

TensorFlow configures its collective runtime only before the process's first op, so the
strategy is made when the backend object is (:func:`join`), before mlpcore makes any variable;
the worker waits there until every worker of ``TF_CONFIG`` has started. TensorFlow has no local
launcher: :func:`launch` starts the processes itself, each with its ``TF_CONFIG``.
"""

from __future__ import annotations

import faulthandler
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from typing import Any

import tensorflow as tf

from mlpcore.distributed import DEFAULT_TIMEOUT, World
from mlpcore.errors import DistributedError

_joined: dict[str, Any] = {}
"""This process's group once joined: ``strategy``, ``world``, ``timeout`` (of a collective);
or ``error``, why it could not join."""


def cluster() -> World | None:
    """This process's rank and the number of workers of ``$TF_CONFIG`` (chief first, then the
    workers, TensorFlow's numbering); ``None`` without a cluster there."""
    text = os.environ.get("TF_CONFIG")
    if not text:
        return None
    try:
        config = json.loads(text)
        jobs, task = config.get("cluster", {}), config.get("task", {})
        chiefs, workers = len(jobs.get("chief", [])), len(jobs.get("worker", []))
        if not chiefs + workers:
            return None
        kind, index = task["type"], int(task["index"])
        if kind not in ("chief", "worker"):
            raise ValueError(f"task type {kind!r} is not 'chief' or 'worker'")
        return World(index + (chiefs if kind == "worker" else 0), chiefs + workers)
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        raise DistributedError(f"TF_CONFIG is not a cluster and task mlpcore can train in "
                               f"({type(error).__name__}: {error})") from None


class _CpuResolver(tf.distribute.cluster_resolver.TFConfigClusterResolver):  # type: ignore[misc]
    """``TF_CONFIG``'s cluster with no accelerators: one CPU replica per worker process (the
    trainer places its own ops on the model's device)."""

    def num_accelerators(self, task_type: str | None = None, task_id: int | None = None,
                         config_proto: Any = None) -> dict[str, int]:
        return {}


JOIN_TIMEOUT = "MLPCORE_JOIN_TIMEOUT"
"""The variable :func:`launch` sets to its ``timeout``, which :func:`join` then waits for."""


def join(timeout: float | None = None) -> None:
    """Make the strategy of ``$TF_CONFIG``'s cluster (if there is one of several workers and it
    is not made yet), waiting until every worker has started; after ``timeout`` s (default
    ``$MLPCORE_JOIN_TIMEOUT``, else :data:`~mlpcore.distributed.DEFAULT_TIMEOUT`) without them
    the process exits with status 1, printing ``Timeout`` and where it waited (the wait is in
    TensorFlow's C++ runtime, which holds the interpreter and ignores SIGTERM: only
    :func:`faulthandler.dump_traceback_later`'s watchdog, a C thread, can end it). A failure to
    join is kept for :func:`world` to raise."""
    if _joined:
        return
    try:
        world = cluster()
        if timeout is None:
            timeout = float(os.environ.get(JOIN_TIMEOUT) or DEFAULT_TIMEOUT)
    except DistributedError as error:
        _joined["error"] = error
        return
    except ValueError:
        _joined["error"] = DistributedError(f"{JOIN_TIMEOUT} must be a number of seconds, "
                                            f"got {os.environ[JOIN_TIMEOUT]!r}")
        return
    if world is None or world.size < 2:
        return
    faulthandler.dump_traceback_later(timeout, exit=True)
    try:
        strategy = tf.distribute.MultiWorkerMirroredStrategy(
            cluster_resolver=_CpuResolver(),
            communication_options=tf.distribute.experimental.CommunicationOptions(
                implementation=tf.distribute.experimental.CommunicationImplementation.RING))
    except RuntimeError as error:  # "Collective ops must be configured at program startup"
        _joined["error"] = DistributedError(
            f"rank {world.rank} of {world.size}: TensorFlow ran an op in this process before "
            f"mlpcore's tensorflow backend was loaded, so it cannot join the TF_CONFIG cluster "
            f"({error}); call mlpcore.get_backend('tensorflow') first")
        return
    finally:
        faulthandler.cancel_dump_traceback_later()
    _joined.update(strategy=strategy, world=world, timeout=float(timeout))


def world(timeout: float) -> World | None:
    """The group of ``$TF_CONFIG`` (joined now if the backend has not yet), its collectives
    failing after ``timeout`` s; ``None`` without a cluster of several workers."""
    join(timeout)
    if "error" in _joined:
        raise _joined["error"]
    if "world" not in _joined:
        return None
    _joined["timeout"] = float(timeout)
    joined: World = _joined["world"]
    return joined


def strategy() -> tf.distribute.Strategy:
    """The joined group's strategy (an error outside one)."""
    if "strategy" not in _joined:
        raise DistributedError("data-parallel training on TensorFlow needs a TF_CONFIG cluster "
                               "of several workers, joined by the backend")
    found: tf.distribute.Strategy = _joined["strategy"]
    return found


_mirrored: dict[tuple[str, ...], tf.distribute.MirroredStrategy] = {}


def mirrored(devices: Sequence[str]) -> tf.distribute.MirroredStrategy:
    """The ``MirroredStrategy`` of these devices (native names), one replica each, made once a
    process (its all-reduce: TensorFlow's default for the devices, collective ops)."""
    key = tuple(devices)
    if key not in _mirrored:
        _mirrored[key] = tf.distribute.MirroredStrategy(devices=list(key))
    return _mirrored[key]


def all_reduce(values: Sequence[tf.Tensor]) -> list[tf.Tensor]:
    """``Σ_ranks values`` by one collective all-reduce (call it inside ``strategy().run``),
    failing after the group's timeout."""
    options = tf.distribute.experimental.CommunicationOptions(timeout_seconds=_joined["timeout"])
    context = tf.distribute.get_replica_context()
    summed: list[tf.Tensor] = context.all_reduce(tf.distribute.ReduceOp.SUM, list(values),
                                                 options=options)
    return summed


def all_sum(values: Sequence[float]) -> list[float]:
    """Each value summed over the ranks: :func:`all_reduce` of a float64 vector inside
    ``strategy().run``."""
    vector = tf.constant(list(values), tf.float64)
    world: World = _joined["world"]
    try:
        summed = strategy().run(tf.function(lambda: all_reduce([vector])[0]))
    except COLLECTIVE_ERRORS as error:
        raise DistributedError(f"rank {world.rank} of {world.size}: the all-reduce of an "
                               "evaluation failed, another worker exited or timed out "
                               f"({type(error).__name__}: "
                               f"{error.message.strip().splitlines()[-1]})") from error
    return [float(v) for v in summed.numpy()]


COLLECTIVE_ERRORS = (tf.errors.DeadlineExceededError, tf.errors.UnavailableError,
                     tf.errors.AbortedError, tf.errors.CancelledError,
                     tf.errors.FailedPreconditionError, tf.errors.InternalError)
"""What a collective raises when another worker exited, stalled or restarted."""


def _free_ports(n: int) -> list[int]:
    """``n`` distinct ports free on 127.0.0.1 now, chosen by the system (sockets bound to port 0,
    all held until all are chosen, then closed for the workers' servers to bind)."""
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def launch(workers: int, command: Sequence[str], timeout: float) -> None:
    """``command`` in ``workers`` local processes, rank ``r`` with
    ``TF_CONFIG={"cluster": {"worker": [127.0.0.1:port, ...]}, "task": {"type": "worker",
    "index": r}}`` (free ports) and, unless set, ``TF_NUM_INTRAOP_THREADS=1``, as torchrun's one
    OpenMP thread each. The first worker to fail ends the run: the others are killed (SIGKILL:
    a worker waiting in TensorFlow's runtime ignores SIGTERM). ``timeout`` bounds each worker's
    wait for the others to start (:func:`join`, through ``$MLPCORE_JOIN_TIMEOUT``)."""
    addresses = [f"127.0.0.1:{port}" for port in _free_ports(workers)]
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for rank in range(workers):
            env = dict(os.environ, TF_CONFIG=json.dumps(
                {"cluster": {"worker": addresses}, "task": {"type": "worker", "index": rank}}),
                **{JOIN_TIMEOUT: str(timeout)})
            if workers > 1:
                env.setdefault("TF_NUM_INTRAOP_THREADS", "1")
            processes.append(subprocess.Popen(list(command), env=env))
        while True:
            codes = [p.poll() for p in processes]
            failed = next(((rank, code) for rank, code in enumerate(codes) if code), None)
            if failed is not None:
                rank, code = failed
                how = (f"was killed by signal {signal.Signals(-code).name}" if code < 0
                       else f"exited with status {code}")
                raise DistributedError(f"worker rank {rank} of {workers} {how}; the launcher "
                                       "stopped the others")
            if all(code == 0 for code in codes):
                return
            time.sleep(0.05)
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()
            p.wait()
