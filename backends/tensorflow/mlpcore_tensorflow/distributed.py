"""Data-parallel training on tf.distribute (:mod:`mlpcore.distributed`, docs/distributed.md): a
``MultiWorkerMirroredStrategy`` across the processes of ``TF_CONFIG``, one CPU replica each, made
when the backend object is (:func:`join`: TensorFlow configures its collectives only before the
process's first op); or a ``MirroredStrategy`` over several devices of one process
(:func:`mirrored`). :func:`launch` starts local workers, each with its ``TF_CONFIG``.
"""

from __future__ import annotations

import contextlib
import faulthandler
import functools
import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from typing import Any

import tensorflow as tf

from mlpcore.distributed import DEFAULT_TIMEOUT, World, collective_failed, worker_failed
from mlpcore.errors import DistributedError

_joined: dict[str, Any] = {}
"""Once joined: ``strategy``, ``world``, ``timeout`` (of a collective); or ``error``."""


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
    """``TF_CONFIG``'s cluster, one CPU replica a worker (the trainer places its own ops)."""

    def num_accelerators(self, task_type: str | None = None, task_id: int | None = None,
                         config_proto: Any = None) -> dict[str, int]:
        return {}


JOIN_TIMEOUT = "MLPCORE_JOIN_TIMEOUT"  # set by launch, read by join


def join(timeout: float | None = None) -> None:
    """Make the strategy of ``$TF_CONFIG``'s cluster of several workers (once), waiting until
    every worker has started; after ``timeout`` s (default ``$MLPCORE_JOIN_TIMEOUT``, else
    ``DEFAULT_TIMEOUT``) the process exits with status 1 by :mod:`faulthandler`'s watchdog (the
    wait holds the interpreter in C++ and ignores SIGTERM). A failure is kept for :func:`world`."""
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


@functools.cache
def mirrored(devices: tuple[str, ...]) -> tf.distribute.MirroredStrategy:
    """The ``MirroredStrategy`` of these devices (native names), made once a process."""
    return tf.distribute.MirroredStrategy(devices=list(devices))


def all_reduce(values: Sequence[tf.Tensor]) -> list[tf.Tensor]:
    """``Σ_ranks values`` by one collective all-reduce inside ``strategy().run``."""
    options = tf.distribute.experimental.CommunicationOptions(timeout_seconds=_joined["timeout"])
    context = tf.distribute.get_replica_context()
    summed: list[tf.Tensor] = context.all_reduce(tf.distribute.ReduceOp.SUM, list(values),
                                                 options=options)
    return summed


def all_sum(values: Sequence[float]) -> list[float]:
    """Each value summed over the ranks: :func:`all_reduce` of a float64 vector."""
    vector = tf.constant(list(values), tf.float64)
    with reporting("an evaluation"):
        summed = strategy().run(tf.function(lambda: all_reduce([vector])[0]))
    return [float(v) for v in summed.numpy()]


@contextlib.contextmanager
def reporting(what: str) -> Iterator[None]:
    """A collective's failure (another worker exited, stalled or restarted) as
    :class:`DistributedError` naming this rank and ``what``."""
    try:
        yield
    except (tf.errors.DeadlineExceededError, tf.errors.UnavailableError, tf.errors.AbortedError,
            tf.errors.CancelledError, tf.errors.FailedPreconditionError,
            tf.errors.InternalError) as error:
        raise collective_failed(_joined["world"], what, error,
                                error.message.strip().splitlines()[-1]) from error


def _free_ports(n: int) -> list[int]:
    """``n`` distinct ports free on 127.0.0.1 now (sockets bound to port 0, all held until all are
    chosen)."""
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def launch(workers: int, command: Sequence[str], timeout: float) -> None:
    """``command`` in ``workers`` local processes, each with its ``TF_CONFIG`` (127.0.0.1, free
    ports), ``$MLPCORE_JOIN_TIMEOUT`` and, unless set, ``TF_NUM_INTRAOP_THREADS=1``. The first
    worker to fail ends the run: the others get SIGKILL (TensorFlow's runtime ignores SIGTERM)."""
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
            for rank, code in enumerate(codes):
                if code:
                    raise worker_failed(rank, workers, code)
            if all(code == 0 for code in codes):
                return
            time.sleep(0.05)
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()
            p.wait()
