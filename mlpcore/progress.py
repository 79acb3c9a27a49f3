"""A dependency-free progress bar for the command line."""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["ProgressBar"]


class ProgressBar:
    """``Epoch 003 [#########.........] 412/860 steps 1.2 s`` on one line of ``stream``, if it is
    a terminal or ``force``; :meth:`update` is a ``fit`` progress callback, call :meth:`clear`
    before printing a line."""

    def __init__(self, stream: TextIO | None = None, width: int = 30, force: bool = False):
        self._stream = sys.stderr if stream is None else stream
        self._width = width
        self._enabled = force or self._stream.isatty()
        self._epoch, self._epoch_started = 0, time.perf_counter()
        self._drawn = False

    def update(self, epoch: int, done: int, total: int) -> None:
        if not self._enabled:
            return
        if epoch != self._epoch:
            self._epoch, self._epoch_started = epoch, time.perf_counter()
        filled = self._width * done // max(total, 1)
        bar = "#" * filled + "." * (self._width - filled)
        seconds = time.perf_counter() - self._epoch_started
        self._stream.write(f"\rEpoch {epoch:03d} [{bar}] {done}/{total} steps {seconds:.1f} s")
        self._stream.flush()
        self._drawn = True

    def clear(self) -> None:
        if self._drawn:
            self._stream.write("\r\033[K")
            self._stream.flush()
            self._drawn = False
