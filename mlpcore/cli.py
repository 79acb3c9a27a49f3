"""The ``mlpcore`` command: list backends, train, evaluate, convert and inspect checkpoints, and
check a backend against the contracts (docs/user-guide.md).

Every error a user can cause prints one line ``mlpcore: error: ...`` on stderr and exits with
status 2 for usage errors (argparse's), 1 otherwise, without a traceback.
"""

from __future__ import annotations

import argparse
import importlib.abc
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from importlib.machinery import ModuleSpec, PathFinder
from types import ModuleType
from typing import TYPE_CHECKING, Any

from mlpcore.distributed import DataParallel, ProcessGroup, World
from mlpcore.errors import MlpcoreError

if TYPE_CHECKING:
    from mlpcore.optimizers import Optimizer

__all__ = ["main"]

RUN_ERROR = 1


def _several(item: Callable[[str], Any], what: str) -> Callable[[str], tuple[Any, ...]]:
    """An argparse type: two or more comma-separated ``item``-s; ``what`` names them."""
    def parse(text: str) -> tuple[Any, ...]:
        try:
            items = tuple(item(part) for part in text.split(","))
        except (ValueError, argparse.ArgumentTypeError):
            items = ()
        if len(items) < 2 or not all(items):
            raise argparse.ArgumentTypeError(
                f"expected two or more comma-separated {what}, got {text!r}")
        return items
    return parse


def _ranged(kind: type[float] | type[int], interval: str) -> Any:
    """An argparse type: a ``kind`` in ``interval``, written as ``"[0, 1)"`` or ``"(0, inf)"``."""
    low, high = (float(end.strip("[]() ")) for end in interval.split(","))
    what = "a number" if kind is float else "an integer"

    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not ((low < value if interval[0] == "(" else low <= value)
                and (value < high if interval[-1] == ")" else value <= high)):  # NaN fails both
            raise argparse.ArgumentTypeError(f"expected {what} in {interval}, got {text!r}")
        return value
    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlpcore", description="A framework-agnostic multilayer perceptron.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    backends = commands.add_parser(
        "backends", help="list backends: name, version, contract, devices, plugin, status",
        description="List the backends the installed plugins offer, loading each; a failed or "
                    "disabled ($MLPCORE_DISABLE_PLUGINS=a,b) plugin gets a row of its own.")
    backends.add_argument("--plugins", action="store_true",
                          help="list the plugins instead (entry points of the 'mlpcore' group)")

    shared = argparse.ArgumentParser(add_help=False)  # train's and evaluate's
    shared.add_argument("--backend", help="backend name (default: $MLPCORE_BACKEND or numpy)")
    shared.add_argument("--data", help="directory of MNIST-format IDX files (gzipped or raw), or "
                        "'auto' to search $MLPCORE_DATA, then Debian's dataset-fashion-mnist "
                        "(default: the embedded Fashion-MNIST subset)")
    shared.add_argument("--device", help="where the model runs: 'cpu' (default), 'gpu', "
                        "'gpu:N', or the backend's own name (torch 'cuda:1', TensorFlow "
                        "'/GPU:1'); 'mlpcore backends' lists each backend's devices")
    train = commands.add_parser(
        "train", parents=[shared], help="train an MLP and report per-epoch cost and accuracy",
        description="Train an MLP with mini-batch SGD or Adam; the defaults reproduce the "
                    "textbook run (784-128 sigmoid-10, truncated-normal(0.1) weights).")
    train.add_argument("--sizes", default=(784, 128, 10),
                       type=_several(_ranged(int, "[1, inf)"), "positive integers like 784,128,10"),
                       help="layer widths, input first (default: 784,128,10)")
    train.add_argument("--activation", choices=("relu", "sigmoid", "tanh"), default="sigmoid")
    train.add_argument("--dropout", type=_ranged(float, "[0, 1]"), default=0.0,
                       help="dropout rate after each hidden layer, in [0, 1]")
    train.add_argument("--l1", type=_ranged(float, "[0, inf)"), default=0.0, help="L1 λ >= 0")
    train.add_argument("--l2", type=_ranged(float, "[0, inf)"), default=0.0, help="L2 λ >= 0")
    train.add_argument("--optimizer", choices=("sgd", "adam"), default="sgd",
                       help="sgd (with --momentum, --nesterov) or adam (default: sgd)")
    train.add_argument("--lr", type=_ranged(float, "(0, inf)"),
                       help="learning rate > 0 (default: 0.1 for sgd, 0.001 for adam)")
    train.add_argument("--momentum", type=_ranged(float, "[0, 1)"),
                       help="SGD momentum in [0, 1) (default: 0)")
    train.add_argument("--nesterov", action="store_true",
                       help="SGD with Nesterov momentum (needs --momentum > 0)")
    train.add_argument("--batch-size", type=_ranged(int, "[1, inf)"), default=64)
    train.add_argument("--epochs", type=_ranged(int, "[1, inf)"), default=10)
    train.add_argument("--seed", type=_ranged(int, "[0, inf)"), default=123)
    train.add_argument("--validation-size", type=_ranged(int, "[0, inf)"),
                       help="training images held back for validation "
                            "(default: 5000 for a full dataset, 10%% of the embedded one)")
    train.add_argument("--dtype", choices=("float32", "float64", "bfloat16", "float16"),
                       default="float32", help="bfloat16, float16: mixed precision, float32 "
                       "variables (docs/devices.md)")
    train.add_argument("--save", metavar="PATH", help="write the trained model to this file")
    train.add_argument("--no-progress", action="store_true", help="do not draw a progress bar")
    train.add_argument("--early-stopping", type=_ranged(int, "[0, inf)"), metavar="PATIENCE",
                       help="stop when the validation loss has not improved for PATIENCE "
                            "epochs, and keep the best epoch's weights")
    train.add_argument("--checkpoint-best", metavar="PATH",
                       help="save the model of the epoch with the lowest validation loss here")
    train.add_argument("--log", metavar="PATH",
                       help="write each epoch's figures to this .jsonl or .csv file")
    train.add_argument("--plot", metavar="PATH",
                       help="draw the training curves into this .png (or .svg, .pdf) file "
                            "(needs matplotlib)")
    train.add_argument("--workers", type=_ranged(int, "[1, inf)"), default=1,
                       help="train data-parallel in this many local processes, started by the "
                            "backend's own launcher (docs/distributed.md); the batch size must "
                            "be a multiple of it")
    train.add_argument("--devices", type=_several(str.strip, "device names like gpu:0,gpu:1"),
                       metavar="DEVICE,DEVICE[,...]",
                       help="train data-parallel in this process, sharing every batch over these "
                            "devices (e.g. gpu:0,gpu:1; docs/distributed.md); the batch size "
                            "must be a multiple of their number")
    train.add_argument("--timeout", type=_ranged(float, "(0, inf)"), default=300.0,
                       help="seconds a worker waits for the others before the run fails "
                            "(default: 300)")

    evaluate = commands.add_parser("evaluate", parents=[shared],
                                   help="print the test accuracy of a checkpoint")
    evaluate.add_argument("checkpoint", help="checkpoint file written by 'mlpcore train --save'")

    convert = commands.add_parser(
        "convert", help="convert a checkpoint between formats (mlpcore, torch, TensorFlow)",
        description="Convert SRC to DST, formats picked from SRC's contents and DST's extension "
                    "(.safetensors, .pt/.pth, .ckpt, .tf2) unless --from/--to say.")
    convert.add_argument("source", metavar="SRC", help="checkpoint to read")
    convert.add_argument("target", metavar="DST", help="checkpoint to write (replaced atomically)")
    convert.add_argument("--map", action="append", metavar="OLD=NEW",
                         help="SRC's variable OLD is dense_i/weights or dense_i/bias NEW "
                              "(repeatable; when SRC's names are off its format's convention)")
    convert.add_argument("--export-map", action="append", metavar="CANON=NAME",
                         help="store variable CANON as NAME in DST (repeatable; all or none)")
    convert.add_argument("--from", dest="source_format", metavar="FORMAT")
    convert.add_argument("--to", dest="target_format", metavar="FORMAT")
    convert.add_argument("--activation", choices=("relu", "sigmoid", "tanh"),
                         help="activation recorded in an mlpcore DST from a foreign SRC")

    inspect = commands.add_parser(
        "inspect", help="print a checkpoint's format, variables (name, shape, dtype), manifest",
        description="Read and verify PATH; print its format, variables, and manifest (mlpcore) "
                    "or a suggested name map (foreign names off their format's convention).")
    inspect.add_argument("path", metavar="PATH")
    inspect.add_argument("--format", help="the format, instead of detecting it")

    plot = commands.add_parser(
        "plot", help="draw the training curves of a 'mlpcore train --log' file",
        description="Draw train loss, train accuracy and validation accuracy per epoch from a "
                    "history log (.jsonl or .csv) into a picture (needs matplotlib).")
    plot.add_argument("log", metavar="LOG", help="history log written by 'mlpcore train --log'")
    plot.add_argument("-o", "--output", metavar="PATH", required=True,
                      help="picture to write (.png, .svg, .pdf)")

    from mlpcore_conformance.runner import add_parser

    add_parser(commands)
    return parser


def _load_splits(data: str | None, validation_size: int | None) -> Any:
    from mlpcore.data import load_dataset

    return load_dataset(None if data in (None, "auto") else data, embedded=data is None,
                        validation_size=validation_size)


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    """Print left-aligned columns; the last column is not padded."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header) - 1)]
    for row in [header, *rows]:
        cells = [f"{cell:<{width}}" for cell, width in zip(row, widths, strict=False)]
        print("  ".join([*cells, row[-1]]))


def _backends(args: argparse.Namespace) -> int:
    from mlpcore.devices import available_devices
    from mlpcore.registry import backend_statuses, get_backend, plugin_statuses

    if args.plugins:
        _table(("PLUGIN", "MODULE", "DISTRIBUTION", "BACKENDS", "STATUS"),
               [(p.name, p.value,
                 f"{p.distribution}=={p.version}" if p.distribution else "-",
                 ",".join(p.backends) or "-",
                 p.status + (f": {p.detail}" if p.detail else "")) for p in plugin_statuses()])
        return 0
    _table(("NAME", "VERSION", "CONTRACT", "DEVICES", "PLUGIN", "STATUS"),
           [(s.name, s.version or "-",
             "-" if s.contract_version is None else str(s.contract_version),
             ",".join(available_devices(get_backend(s.name))) if s.status == "ok" else "-",
             f"{s.distribution}=={s.distribution_version}" if s.distribution else s.plugin,
             s.status + (f": {s.detail}" if s.detail else ""))
            for s in backend_statuses(load=True)])
    return 0


def _train_options(args: argparse.Namespace) -> tuple[Optimizer, list[Any]]:
    """The optimizer (``--lr`` defaults to its own) and the callbacks train's options ask for,
    every option and path checked before a backend or any data is loaded."""
    from mlpcore.callbacks import EarlyStopping, HistoryLogger, ModelCheckpoint
    from mlpcore.optimizers import SGD, Adam
    from mlpcore.plot import check_plot_path

    sgd_only = [flag for flag, given in (("--momentum", args.momentum is not None),
                                         ("--nesterov", args.nesterov)) if given]
    if args.optimizer == "adam" and sgd_only:
        raise ValueError(f"{' and '.join(sgd_only)}: an SGD option; --optimizer adam takes "
                         "--lr (β1 0.9, β2 0.999, ε 1e-8)")
    if args.nesterov and not args.momentum:
        raise ValueError("--nesterov needs --momentum greater than 0")
    lr = {} if args.lr is None else {"lr": args.lr}
    optimizer = (Adam(**lr) if args.optimizer == "adam"
                 else SGD(**lr, momentum=args.momentum or 0.0, nesterov=args.nesterov))
    monitoring = [flag for flag, value in (("--early-stopping", args.early_stopping),
                                           ("--checkpoint-best", args.checkpoint_best))
                  if value is not None]
    if monitoring and args.validation_size == 0:
        raise ValueError(f"{' and '.join(monitoring)}: the validation loss is watched, so "
                         "--validation-size must be greater than 0")
    if args.plot is not None:
        check_plot_path(args.plot, "--plot path")
    callbacks: list[Any] = []
    if args.early_stopping is not None:
        callbacks.append(EarlyStopping(patience=args.early_stopping))
    for flag, value, make in (("--checkpoint-best", args.checkpoint_best, ModelCheckpoint),
                              ("--log", args.log, HistoryLogger)):
        if value is not None:
            try:
                callbacks.append(make(value))
            except ValueError as error:
                raise ValueError(f"{flag}: {error}") from None
    return optimizer, callbacks


def _train(args: argparse.Namespace) -> int:
    """``mlpcore train``: with ``--workers`` the launching process starts the workers, each of
    which runs this again; there rank 0 alone prints (progress bar included) and saves."""
    import contextlib

    from mlpcore.backend import Capability
    from mlpcore.registry import get_backend
    from mlpcore.training import replica_devices

    optimizer, callbacks = _train_options(args)
    if args.devices and args.workers > 1:
        raise ValueError("--devices shares each batch over one process's devices, --workers over "
                         "several processes: give one of them")
    backend = get_backend(args.backend)
    if args.devices:  # checked before any data is read
        replica_devices(backend, args.devices)
    world: World | None = None
    if Capability.DATA_PARALLEL in backend.capabilities and isinstance(backend, ProcessGroup):
        world = backend.world(args.timeout)  # None unless started by a launcher
        if world is None and args.workers > 1:  # the launching process: start the workers
            if args.batch_size % args.workers:
                raise ValueError(f"--batch-size {args.batch_size} is not a multiple of "
                                 f"--workers {args.workers}: each worker takes batch size / "
                                 "workers rows of every batch")
            backend.launch(args.workers, [sys.executable, "-m", "mlpcore.cli", *args.argv],
                           args.timeout)
            return 0
    elif args.workers > 1:
        raise ValueError(f"--workers: backend {backend.name!r} has no data-parallel training "
                         "(capability 'data_parallel')")
    if world is not None and args.workers > 1 and world.size != args.workers:
        raise ValueError(f"--workers {args.workers}, but this process is one of {world.size} "
                         "workers started by a launcher")
    lead = world is None or world.rank == 0
    with open(os.devnull, "w") as null, contextlib.redirect_stdout(sys.stdout if lead else null):
        return _train_here(args, world, optimizer, callbacks)


def _train_here(args: argparse.Namespace, world: World | None, optimizer: Optimizer,
                callbacks: list[Any]) -> int:
    """The training of ``mlpcore train`` in this process, one of the workers of ``world`` if
    there is one (each reads the data)."""
    from tqdm import tqdm

    from mlpcore.callbacks import EarlyStopping, ModelCheckpoint
    from mlpcore.io.checkpoint import save
    from mlpcore.model import MLP
    from mlpcore.regularisers import L1, L2
    from mlpcore.spec import MLPSpec
    from mlpcore.training import EpochRecord, fit
    from mlpcore.validation import check_targets

    lead = world is None or world.rank == 0
    splits = _load_splits(args.data, args.validation_size)
    spec = MLPSpec(sizes=args.sizes, activation=args.activation, dropout=args.dropout)
    model = MLP(spec, backend=args.backend, seed=args.seed, dtype=args.dtype, device=args.device)
    # the test split is checked before training, so a bad one costs no epochs
    check_targets(splits.test.labels, len(splits.test.labels), spec.n_outputs,
                  "softmax_cross_entropy", model.variable_dtype,
                  what=f"test labels ({splits.test.source})")
    n_train = len(splits.train.labels)
    n_valid = 0 if splits.valid is None else len(splits.valid.labels)
    print(f"Data: {splits.source} ({n_train} train, {n_valid} valid, "
          f"{len(splits.test.labels)} test)")
    print(f"Model: {'-'.join(map(str, spec.sizes))} {spec.activation}, dropout {spec.dropout}, "
          f"backend {model.backend.name} {model.backend.framework_version()}, {model.dtype}"
          + ("" if model.device in ("cpu", "/CPU:0", "cpu:0") else f", device {model.device}")
          + (f", batches shared over {','.join(args.devices)}" if args.devices else ""))
    print(f"Optimizer: {optimizer}")
    bar: tqdm[Any] | None = None  # the running epoch's, drawn only if stderr is a terminal

    def progress(epoch: int, done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, desc=f"Epoch {epoch:03d}", unit="step", leave=False,
                       disable=None)
        bar.update(done - bar.n)

    def report(record: EpochRecord) -> None:
        nonlocal bar
        if bar is not None:
            bar.close()  # leave=False: its line is cleared for the epoch's
            bar = None
        valid = "-" if record.valid_accuracy is None else f"{record.valid_accuracy:.3f}"
        print(f"Epoch: {record.epoch:03d} | AvgCost: {record.loss:.3f} | "
              f"Train/Valid ACC: {record.train_accuracy:.3f}/{valid} | {record.seconds:.1f} s",
              flush=True)

    started = time.perf_counter()
    history = fit(
        model, splits.train, optimizer=optimizer,
        regulariser=([L1(args.l1)] if args.l1 else []) + ([L2(args.l2)] if args.l2 else []),
        epochs=args.epochs, batch_size=args.batch_size, validation=splits.valid, seed=args.seed,
        steps_per_call=max(1, math.ceil(n_train / args.batch_size) // 50),
        progress=progress if lead and not args.no_progress else None,
        on_epoch=report, callbacks=callbacks,
        data_parallel=(DataParallel(args.timeout, args.devices or ())
                       if args.devices or world is not None else False))
    print(f"Total training time: {time.perf_counter() - started:.1f} s")
    for callback in callbacks:
        if isinstance(callback, EarlyStopping) and callback.stopped_epoch is not None:
            print(f"Early stopping: valid_loss did not improve for {args.early_stopping or 1} "
                  f"epoch(s) after epoch {callback.best_epoch}")
        if isinstance(callback, EarlyStopping) and callback.best_epoch != len(history.epochs):
            print(f"Restored the weights of epoch {callback.best_epoch} "
                  f"(valid_loss {callback.best:.3f})")
        if isinstance(callback, ModelCheckpoint):
            print(f"Best checkpoint: {callback.path} (epoch {callback.best_epoch}, "
                  f"valid_loss {callback.best:.3f})")
    if args.log:
        print(f"History log: {args.log}")
    if args.plot and lead:
        print(f"Training curves: {history.plot(args.plot)}")
    if args.save and lead:  # before the test evaluation
        print(f"Saved checkpoint: {save(model, args.save)}")
    test = model.evaluate(splits.test.images, splits.test.labels)
    print(f"Test ACC: {test.accuracy:.3f}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from mlpcore.io.checkpoint import load

    model = load(args.checkpoint, backend=args.backend, device=args.device)
    splits = _load_splits(args.data, 0)
    test = model.evaluate(splits.test.images, splits.test.labels)
    print(f"Checkpoint: {args.checkpoint} ({'-'.join(map(str, model.spec.sizes))} "
          f"{model.spec.activation}) on backend {model.backend.name}")
    print(f"Data: {splits.source} ({len(splits.test.labels)} test images)")
    print(f"Test ACC: {test.accuracy:.3f}")
    return 0


def _convert(args: argparse.Namespace) -> int:
    from mlpcore.io.interop import convert
    from mlpcore.io.namemap import parse_map

    path = convert(args.source, args.target, source_format=args.source_format,
                   target_format=args.target_format,
                   name_map=parse_map(args.map) if args.map else None,
                   export_map=parse_map(args.export_map) if args.export_map else None,
                   activation=args.activation)
    print(f"Converted {args.source} -> {path}")
    return 0


def _inspect(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from mlpcore.io.checkpoint import MANIFEST_KEY, check_fit, read_checkpoint, shape_text
    from mlpcore.io.interop import default_map, detect_format, read_variables
    from mlpcore.io.namemap import format_map, suggest_map

    path = Path(args.path)
    entry = detect_format(path, format=args.format)
    checkpoint = read_checkpoint(path, mmap=True) if entry.name == "mlpcore" else None
    if checkpoint is not None:  # refuse what load refuses
        check_fit(checkpoint, checkpoint.spec, "its own spec")
    variables = checkpoint.variables if checkpoint else read_variables(path, format=entry.name)
    print(f"{path}: {entry.name} ({entry.description})")
    if entry.name != "mlpcore":
        print("shapes in mlpcore's canonical layout, weights (fan_in, fan_out); the file may "
              "store them transposed (torch: (out, in))")
    _table(("NAME", "SHAPE", "DTYPE"),
           [(name, shape_text(a.shape), str(a.dtype)) for name, a in variables.items()])
    if checkpoint is not None:
        print(f"manifest ({MANIFEST_KEY!r} metadata):")
        print(json.dumps(checkpoint.manifest, indent=2))
    elif default_map(entry, list(variables)) is None:
        shapes = {name: tuple(a.shape) for name, a in variables.items()}
        print(f"the names do not follow the {entry.name} convention; suggested name map:")
        print(format_map(suggest_map(shapes), shapes))
    return 0


def _plot(args: argparse.Namespace) -> int:
    from mlpcore.callbacks import read_history
    from mlpcore.plot import check_plot_path

    check_plot_path(args.output, "--output path")
    history = read_history(args.log)
    print(f"Training curves of {len(history.epochs)} epochs: {history.plot(args.output)}")
    return 0


COMMANDS = {"backends": _backends, "train": _train, "evaluate": _evaluate, "convert": _convert,
            "inspect": _inspect, "plot": _plot}


class _QuietTensorFlowImport(importlib.abc.MetaPathFinder):
    """Imports ``tensorflow`` with file descriptor 2 on /dev/null: its C++ start-up log (oneDNN
    and CPU-feature notices, CUDA probing) is written before any log level applies."""

    def find_spec(self, name: str, path: Any, target: Any = None) -> ModuleSpec | None:
        spec = PathFinder.find_spec(name, path, target) if name == "tensorflow" else None
        if spec is not None and spec.loader is not None:  # find_spec also runs without importing
            run = spec.loader.exec_module

            def exec_quietly(module: ModuleType) -> None:
                sys.stderr.flush()
                saved = os.dup(2)
                with open(os.devnull, "wb") as null:
                    os.dup2(null.fileno(), 2)
                try:
                    run(module)
                finally:
                    os.dup2(saved, 2)
                    os.close(saved)

            spec.loader.exec_module = exec_quietly  # type: ignore[method-assign]
        return spec


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status.

    TensorFlow's C++ log stays off the terminal unless ``$TF_CPP_MIN_LOG_LEVEL`` is ``0``: its
    import runs with the native stderr on /dev/null, and later INFO lines are filtered (level 1).
    (TensorFlow itself sets the variable to 1 when imported, so a value inherited from a parent
    process that imported it does not count as a request for the log.)
    """
    quiet = _QuietTensorFlowImport()
    ours = "TF_CPP_MIN_LOG_LEVEL" not in os.environ
    if os.environ.get("TF_CPP_MIN_LOG_LEVEL") != "0" and "tensorflow" not in sys.modules:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
        sys.meta_path.insert(0, quiet)
    parser = build_parser()
    try:
        args, extra = parser.parse_known_args(argv)
        if args.command == "conformance":  # pytest's arguments pass through
            from mlpcore_conformance.runner import run

            return run(args, extra)
        if extra:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.argv = list(sys.argv[1:] if argv is None else argv)  # for train's workers
        return COMMANDS[args.command](args)
    except BrokenPipeError:  # the reader went away (| head): stop quietly, as other tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return RUN_ERROR
    except (MlpcoreError, ValueError, OSError) as error:
        print(f"mlpcore: error: {error}", file=sys.stderr)
        return RUN_ERROR
    except KeyboardInterrupt:
        print("mlpcore: interrupted", file=sys.stderr)
        return 130
    finally:
        if quiet in sys.meta_path:
            sys.meta_path.remove(quiet)
            if ours:
                del os.environ["TF_CPP_MIN_LOG_LEVEL"]


if __name__ == "__main__":
    sys.exit(main())
