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

:func:`start_writeback` lets a writer ask the kernel to start writing what it has written so far
to disk while it writes the rest, so that the final ``fsync`` has little left to wait for. It is
only a hint (Linux ``sync_file_range(SYNC_FILE_RANGE_WRITE)``, nothing elsewhere); durability
still comes from the ``fsync``, which also reports any write-back error.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO, Final

from mlpcore.errors import CheckpointError

__all__ = ["TEMP_SUFFIX", "atomic_write", "check_target", "fsync_directory", "fsync_file",
           "start_writeback"]

TEMP_SUFFIX: Final = ".tmp"
NEW_FILE_MODE: Final = 0o644
_SYNC_FILE_RANGE_WRITE: Final = 2


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


def fsync_file(path: Path) -> None:
    """``fsync`` the file at ``path``, written and closed elsewhere; ``OSError`` propagates."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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


def start_writeback(fd: int, offset: int, length: int) -> None:
    """Ask the kernel to start writing bytes ``[offset, offset + length)`` of ``fd`` to disk.

    Does not wait, changes no data and raises nothing: on Linux it calls ``sync_file_range``
    with ``SYNC_FILE_RANGE_WRITE`` only (which starts write-back of the range's dirty pages and
    neither waits for it nor consumes write-back errors, so a later ``fsync`` still reports
    them); elsewhere, or if the call fails, it does nothing. Data is durable only after
    ``fsync``.
    """
    call = _sync_file_range()
    if call is not None and length > 0:
        call(fd, offset, length, _SYNC_FILE_RANGE_WRITE)


@functools.cache
def _sync_file_range() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        function = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function
