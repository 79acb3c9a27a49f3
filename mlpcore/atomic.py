"""Atomic file replacement: a file at a path is either its complete old or complete new content.

:func:`atomic_write` writes through a temporary file in the target's own directory, named
``.<target name>.<random>.tmp`` (hidden, and with a suffix no reader takes for a checkpoint),
then flushes and ``fsync``-s it, sets its permission bits, renames it over the target with
:func:`os.replace` and ``fsync``-s the directory so the rename is durable. A process killed at
any moment leaves either the old file or the new one at the path, at worst plus a stray
temporary file. Any failure removes the temporary file and leaves the target untouched.

Replacing renames a new inode over the path, so a reader that has the old file open or
memory-mapped keeps seeing the old bytes: saving over the file a model was just loaded from is
safe.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, Final

from mlpcore.errors import CheckpointError

__all__ = ["TEMP_SUFFIX", "atomic_write", "check_target"]

TEMP_SUFFIX: Final = ".tmp"
NEW_FILE_MODE: Final = 0o644


def check_target(target: Path, what: str = "checkpoint") -> None:
    """Refuse a target whose folder is missing, that is a directory, or that is a symlink."""
    directory = target.parent
    if not directory.is_dir():
        problem = "is not a directory" if directory.exists() else "does not exist"
        raise CheckpointError(f"cannot save {what} {target}: {directory} {problem}")
    if target.is_symlink():
        raise CheckpointError(
            f"cannot save {what} {target}: it is a symbolic link (to {os.readlink(target)}); "
            "mlpcore replaces files, never writes through links: pass the real path")
    if target.is_dir():
        raise CheckpointError(f"cannot save {what} {target}: it is a directory")


def atomic_write(target: Path, write: Callable[[BinaryIO], None], what: str = "checkpoint",
                 ) -> Path:
    """Replace ``target`` with what ``write(stream)`` writes, atomically and durably.

    ``OSError`` from any step (including ``write``) becomes :class:`CheckpointError` naming the
    target, with the ``OSError`` as its cause; any other exception (``KeyboardInterrupt``, a
    ``ValueError`` from ``write``) propagates unchanged. Either way the temporary file is removed
    and the target is untouched. An existing target's permission bits are kept; a new file gets
    0644.
    """
    check_target(target, what)
    try:
        mode = target.stat().st_mode & 0o7777
    except OSError:
        mode = NEW_FILE_MODE
    try:
        fd, temp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.",
                                         suffix=TEMP_SUFFIX)
    except OSError as err:
        raise CheckpointError(f"cannot save {what} {target}: {err}") from err
    try:
        with os.fdopen(fd, "wb") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temp_name, mode)
        os.replace(temp_name, target)
    except BaseException as err:
        with contextlib.suppress(OSError):
            os.unlink(temp_name)
        if isinstance(err, OSError):
            raise CheckpointError(f"cannot save {what} {target}: {err}") from err
        raise
    fsync_directory(target.parent)
    return target


def fsync_directory(directory: Path) -> None:
    """``fsync`` a directory so a rename in it survives a crash; best effort where unsupported."""
    flag = getattr(os, "O_DIRECTORY", None)
    if flag is None:
        return
    try:
        fd = os.open(directory, os.O_RDONLY | flag)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)
