"""Training curves as a picture: per epoch, the train loss, train accuracy and validation accuracy
that d2l's ``Animator`` draws (Dive into Deep Learning, "Implementation of Softmax Regression
from Scratch"). Needs matplotlib, the optional extra ``mlpcore[plot]``; nothing else imports it.
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from mlpcore.errors import MissingDependencyError
from mlpcore.validation import check_output_path

if TYPE_CHECKING:
    from mlpcore.training import History

__all__ = ["check_plot_path", "plot_history", "require_matplotlib"]


def require_matplotlib() -> ModuleType:
    """``matplotlib.figure``, or :class:`~mlpcore.errors.MissingDependencyError` saying how to
    install it."""
    try:
        import matplotlib.figure
    except ImportError as error:
        raise MissingDependencyError(
            "drawing training curves needs matplotlib, an optional extra: "
            "pip install 'mlpcore[plot]' (or pip install matplotlib)") from error
    return matplotlib.figure


def check_plot_path(path: str | os.PathLike[str], what: str = "plot path") -> Path:
    """``path`` as a :class:`Path` if matplotlib is installed, the folder exists and the suffix
    names a format matplotlib writes; else an error naming ``what``."""
    target = check_output_path(path, what)
    kinds = require_matplotlib().Figure().canvas.get_supported_filetypes()
    if target.suffix[1:].lower() not in kinds:
        raise ValueError(f"{what} {str(target)!r}: matplotlib cannot write {target.suffix!r} "
                         f"files; use one of .{', .'.join(kinds)}")
    return target


def plot_history(history: History, path: str | os.PathLike[str]) -> Path:
    """Draw ``history``'s train loss, train accuracy and validation accuracy against the epoch
    (a curve for each that was measured) into ``path``, in the format of its suffix (``.png``,
    ``.svg``, ``.pdf``...), replacing the file atomically; returns the path. Uses no pyplot
    state and no display: safe in scripts, threads and tests."""
    target = check_plot_path(path)
    figure = require_matplotlib().Figure(figsize=(6, 4), layout="tight")
    kind = target.suffix[1:].lower()
    if not history.epochs:
        raise ValueError("the history has no epochs to plot")
    epochs = [record.epoch for record in history.epochs]
    axes = figure.add_subplot()
    for label, values, style in (("train loss", history.loss, "-"),
                                 ("train acc", history.train_accuracy, "m--"),
                                 ("valid acc", history.valid_accuracy, "g-.")):
        if any(value is not None for value in values):
            axes.plot(epochs, [math.nan if v is None else v for v in values], style, label=label,
                      marker="." if len(epochs) == 1 else None)
    axes.set_xlabel("epoch")
    axes.xaxis.get_major_locator().set_params(integer=True)  # a MaxNLocator: whole epochs
    if len(epochs) > 1:
        axes.set_xlim(epochs[0], epochs[-1])
    axes.grid(True)
    axes.legend()
    descriptor, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.",
                                             suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb") as file:
            figure.savefig(file, format=kind)
        os.chmod(temporary, 0o644)  # mkstemp's file is private
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    return target
