"""Atomic, durable replacement of a checkpoint's file(s): each path holds its old or its new bytes.

:func:`write_atomically` lets a writer (safetensors, ``torch.save``, TensorFlow) write into a
private folder ``.<target name>.<random>.tmp`` beside the target, ``fsync``-s what it wrote,
renames it over the target path(s) in order and ``fsync``-s the folder. A failed save leaves the
previous files and no temporary folder; a killed one at worst leaves that folder. When one of
several renames fails (TensorFlow's data file, then its index), the files already renamed are put
back from hard links kept until then, so the pair is never left mixed. A reader that has the old
file open or memory-mapped keeps the old bytes: a new inode is renamed over the path.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Final

from mlpcore.errors import CheckpointError

__all__ = ["TEMP_SUFFIX", "check_target", "write_atomically"]

TEMP_SUFFIX: Final = ".tmp"
_OP_TAG: Final = re.compile(r"\s*\[Op:\w+\]$")
Moves = list[tuple[Path, Path]]


def check_target(target: Path, what: str = "checkpoint") -> None:
    """Refuse a target whose folder is missing, that is a directory, or that is a symlink."""
    if not target.parent.is_dir():
        problem = "is not a directory" if target.parent.exists() else "does not exist"
        raise CheckpointError(f"cannot save {what} {target}: {target.parent} {problem}")
    if target.is_symlink():
        raise CheckpointError(
            f"cannot save {what} {target}: it is a symbolic link (to {os.readlink(target)}); "
            "mlpcore replaces files, never writes through links: pass the real path")
    if target.is_dir():
        raise CheckpointError(f"cannot save {what} {target}: it is a directory")


def write_atomically(target: Path, write: Callable[[Path], Moves], *, what: str = "checkpoint",
                     errors: tuple[type[Exception], ...] = ()) -> Path:
    """Replace ``target`` (and its companion files) with what ``write(folder)`` writes.

    ``write`` writes into the fresh ``folder`` and returns ``(written file, final path)`` pairs,
    renamed in that order. ``OSError`` and ``errors`` (a framework's own write errors) become a
    one-line :class:`CheckpointError` naming ``target``, with the error as its cause; anything
    else (``KeyboardInterrupt``) propagates. Either way the folder is removed. An existing
    target's permission bits are kept; new files get 0644.
    """
    check_target(target, what)
    try:
        mode = target.stat().st_mode & 0o7777
    except OSError:
        mode = 0o644
    folder: Path | None = None
    caught: tuple[type[Exception], ...] = (OSError, *errors)
    try:
        folder = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.",
                                       suffix=TEMP_SUFFIX))
        moves = write(folder)
        for written, _ in moves:
            fd = os.open(written, os.O_RDONLY)
            try:
                os.fsync(fd)  # frameworks close their files unsynced
            finally:
                os.close(fd)
            os.chmod(written, mode)
        _rename_all(moves, folder)
    except caught as error:
        raise CheckpointError(f"cannot save {what} {target}: {_reason(error)}") from error
    finally:
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
    with contextlib.suppress(OSError):  # make the rename durable; not every system can
        fd = os.open(target.parent, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    return target


def _rename_all(moves: Moves, folder: Path) -> None:
    """Rename each pair in order; if one fails, undo those done (see the module doc)."""
    undo: list[tuple[Path, Path | None]] = []  # final path, its old file kept (None: remove)
    try:
        for number, (written, final) in enumerate(moves):
            if number < len(moves) - 1:  # a later rename may fail: keep a way back
                kept = folder / f"previous-{number}"
                if not os.path.lexists(final):
                    undo.append((final, None))
                with contextlib.suppress(OSError):  # no hard links here: no way back
                    os.link(final, kept, follow_symlinks=False)
                    undo.append((final, kept))
            os.replace(written, final)
    except OSError:
        for final, old in reversed(undo):
            with contextlib.suppress(OSError):
                if old is None:
                    final.unlink()
                else:
                    os.replace(old, final)
        raise


def _reason(error: BaseException) -> str:
    """One line: ``strerror`` of an ``OSError``, else the class and the message's reason.

    A framework names the file it was writing (in the temporary folder), then the reason:
    ``<file>; <reason> [Op:...]`` (TensorFlow) or ``<file>: <reason>``; the reason is kept.
    """
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    text = str(getattr(error, "message", error)).strip()
    marker = TEMP_SUFFIX + "/"
    line = next((line for line in text.splitlines() if marker in line),
                text.splitlines()[0] if text else "")
    after = line.split(marker)[-1]
    if marker in line and re.search(r"[;:] ", after):
        line = re.split(r"[;:] ", after, maxsplit=1)[-1]
    return f"{type(error).__name__}: {_OP_TAG.sub('', line).strip()}"
