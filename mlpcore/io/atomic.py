"""Atomic, durable replacement of a checkpoint's file(s): each path holds its old or new bytes.

A writer writes into a private folder ``.<target name>.<random>.tmp`` beside the target; its
files are ``fsync``-ed and renamed over their targets in order (if one fails, those done are put
back from hard links: TensorFlow's data and index are never mixed), then the folder is synced.
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

__all__ = ["TEMP_SUFFIX", "fsync", "write_atomically"]

TEMP_SUFFIX: Final = ".tmp"


def write_atomically(target: Path, write: Callable[[Path], list[tuple[Path, Path]]], *,
                     errors: tuple[type[Exception], ...] = ()) -> Path:
    """Replace ``target`` with what ``write(folder)`` writes into a fresh folder; it returns
    ``(written file, final path)`` pairs, renamed in order. ``OSError`` and ``errors`` (a
    framework's write errors) become a one-line :class:`CheckpointError` naming ``target``.
    An existing target's permission bits are kept; new files get 0644."""
    problem = (f"{target.parent} is not a directory" if target.parent.exists() else
               f"{target.parent} does not exist") if not target.parent.is_dir() else (
        f"it is a symbolic link (to {os.readlink(target)}); mlpcore replaces files, never "
        "writes through links: pass the real path") if target.is_symlink() else (
        "it is a directory" if target.is_dir() else None)
    if problem:
        raise CheckpointError(f"cannot save checkpoint {target}: {problem}")
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
            fsync(written)  # frameworks close their files unsynced
            os.chmod(written, mode)
        _rename_all(moves, folder)
    except caught as error:
        raise CheckpointError(f"cannot save checkpoint {target}: {_reason(error)}") from error
    finally:
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
    with contextlib.suppress(OSError):  # make the renames durable where the system can
        fsync(target.parent, getattr(os, "O_DIRECTORY", 0))
    return target


def fsync(path: Path, flags: int = 0) -> None:
    """``fsync`` the file (or, with ``os.O_DIRECTORY``, the folder) at ``path``."""
    fd = os.open(path, os.O_RDONLY | flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _rename_all(moves: list[tuple[Path, Path]], folder: Path) -> None:
    """Rename each pair in order; if one fails, undo those done."""
    undo: list[tuple[Path, Path | None]] = []  # final path, its old file kept (None: remove)
    try:
        for number, (written, final) in enumerate(moves):
            if number < len(moves) - 1:  # a later rename may fail: keep a way back
                if not os.path.lexists(final):
                    undo.append((final, None))
                with contextlib.suppress(OSError):  # no hard links here: no way back
                    os.link(final, folder / f"previous-{number}", follow_symlinks=False)
                    undo.append((final, folder / f"previous-{number}"))
            os.replace(written, final)
    except OSError:
        for final, old in reversed(undo):
            with contextlib.suppress(OSError):
                os.replace(old, final) if old is not None else final.unlink()
        raise


def _reason(error: BaseException) -> str:
    """One line: an ``OSError``'s ``strerror``, else the class and the message's reason, which a
    framework writes after the temporary file it names: ``<file>; <reason> [Op:...]`` (TF)."""
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    lines = str(getattr(error, "message", error)).strip().splitlines() or [""]
    line = next((line for line in lines if TEMP_SUFFIX + "/" in line), lines[0])
    if TEMP_SUFFIX + "/" in line:
        line = re.split(r"[;:] ", line.split(TEMP_SUFFIX + "/")[-1], maxsplit=1)[-1]
    return f"{type(error).__name__}: {line.split(' [Op:')[0].strip()}"
