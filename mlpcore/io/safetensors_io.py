"""The safetensors container, read and written by mlpcore itself, with every byte accounted for.

Format (https://github.com/huggingface/safetensors)::

    bytes 0-7        N, the header length, unsigned 64-bit little-endian
    bytes 8 .. 8+N   the header: UTF-8 JSON object
                       {"<name>": {"dtype": "F32", "shape": [d0, d1, ...],
                                   "data_offsets": [BEGIN, END]}, ...,
                        "__metadata__": {"<key>": "<string value>", ...}}   (optional)
                     padded at the end with spaces (0x20) to a multiple of 8 bytes
    bytes 8+N ..     the data buffer; tensor bytes at [8+N+BEGIN, 8+N+END), little-endian, C order

:func:`read_layout` validates the header before any tensor byte is touched, so a hostile file
can neither allocate without bound nor hand safetensors (or NumPy) inconsistent offsets:

- the file is a regular file (not a FIFO or device, which could block or never end) of at least
  8 bytes; ``N`` is at most :data:`MAX_HEADER_BYTES` and fits in the file;
- the header is strict UTF-8 JSON, an object, with no duplicate key at any level;
- every tensor name is 1..:data:`MAX_NAME_LENGTH` printable characters, with no NUL or other
  control character, no ``..`` path segment and no leading ``/``;
- every entry has exactly ``dtype`` (one of :data:`DTYPES`), ``shape`` (non-negative integers,
  at most :data:`MAX_RANK` of them) and ``data_offsets`` (``0 <= BEGIN <= END``);
- ``prod(shape) * itemsize == END - BEGIN``, and the tensors, sorted by ``BEGIN``, tile the data
  buffer exactly: the first starts at 0, each starts where the previous ends (no overlap, no
  gap), and the last ends at the end of the file (no truncation, no appended bytes);
- ``__metadata__``, when present, maps strings to strings.

Failures raise :class:`~mlpcore.errors.CheckpointError` naming the file (and the tensor, where
one is at fault). :func:`read_tensors` then reads the data in bounded chunks into one buffer (or
maps it, read-only), feeding each tensor's bytes to its digest while they are in cache.
:func:`write_container` writes a header and each array's bytes straight from the array, with
no serialised copy of the data, optionally digesting the data on a worker thread while it is
written and then rewriting the header, whose fixed-width fields (checksums) are only known at
the end, in place.
"""

from __future__ import annotations

import json
import math
import mmap
import os
import re
import stat
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Final, Protocol

import numpy as np
import numpy.typing as npt

from mlpcore.errors import CheckpointError
from mlpcore.io.atomic import start_writeback

__all__ = [
    "DTYPES",
    "MAX_HEADER_BYTES",
    "Digest",
    "Layout",
    "TensorSpec",
    "byte_view",
    "name_problem",
    "open_regular",
    "read_layout",
    "read_tensors",
    "sniff",
    "write_container",
]

MAX_HEADER_BYTES: Final = 100_000_000
"""The largest header accepted (the limit safetensors itself applies)."""
MAX_NAME_LENGTH: Final = 1024
MAX_RANK: Final = 8
CHUNK_BYTES: Final = 8 << 20
"""Reads, writes and digests proceed in chunks of this size (a read chunk is digested while
cached)."""
WRITEBACK_BYTES: Final = 32 << 20
""":func:`write_container` asks the kernel to start writing each such stretch of data to disk as
soon as it is written (:func:`mlpcore.io.atomic.start_writeback`)."""
THREADED_DIGEST_BYTES: Final = 1 << 20
"""Above this many bytes to digest, :func:`write_container` digests on a worker thread."""
LENGTH_BYTES: Final = 8
METADATA_KEY: Final = "__metadata__"

DTYPES: Final[dict[str, np.dtype[Any]]] = {
    "F64": np.dtype("<f8"), "F32": np.dtype("<f4"), "F16": np.dtype("<f2"),
    "I64": np.dtype("<i8"), "I32": np.dtype("<i4"), "I16": np.dtype("<i2"), "I8": np.dtype("i1"),
    "U64": np.dtype("<u8"), "U32": np.dtype("<u4"), "U16": np.dtype("<u2"), "U8": np.dtype("u1"),
    "BOOL": np.dtype("?"),
}
"""safetensors dtype codes mlpcore can hold as NumPy arrays, and their little-endian dtype."""
_CODES: Final = {dtype.str.lstrip("<|="): code for code, dtype in DTYPES.items()}

_ENTRY_KEYS: Final = frozenset({"dtype", "shape", "data_offsets"})
_PICKLE_MAGIC: Final = (b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05")
_ZIP_MAGIC: Final = b"PK\x03\x04"
_BAD_NAME: Final = re.compile(r"[\x00-\x1f\x7f]")


class Digest(Protocol):
    """An incremental checksum: ``hashlib`` objects and :class:`mlpcore.io.checksums.Crc32`."""

    def update(self, data: Any, /) -> None: ...

    def hexdigest(self) -> str: ...


@dataclass(frozen=True)
class TensorSpec:
    """One header entry: safetensors dtype code, shape, and [begin, end) in the data buffer."""

    dtype: str
    shape: tuple[int, ...]
    begin: int
    end: int

    @property
    def nbytes(self) -> int:
        return self.end - self.begin


@dataclass(frozen=True)
class Layout:
    """A validated header. ``tensors`` is in header order; ``data_start`` is ``8 + N``."""

    path: Path
    file_size: int
    data_start: int
    metadata: dict[str, str]
    tensors: dict[str, TensorSpec]


def open_regular(path: Path, what: str = "checkpoint") -> BinaryIO:
    """Open ``path`` for reading, refusing a symlink, directory, FIFO, socket or device.

    The file is opened without following a final symlink and without blocking (a FIFO would
    otherwise wait for a writer forever), then checked with ``fstat``.
    """
    if path.is_symlink():
        raise CheckpointError(
            f"{what} {path} is a symbolic link (to {os.readlink(path)}); mlpcore does not follow "
            "links to checkpoints: pass the real path if you trust it")
    if not path.exists():
        raise CheckpointError(f"{what} file {path} does not exist")
    if path.is_dir():
        raise CheckpointError(f"{what} {path} is a directory, not a file")
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except OSError as err:
        raise CheckpointError(f"cannot read {what} {path}: {err}") from err
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise CheckpointError(f"{what} {path} is not a regular file")
        return os.fdopen(fd, "rb", buffering=0)
    except BaseException:
        os.close(fd)
        raise


def read_layout(stream: BinaryIO, path: Path) -> Layout:
    """Read and validate the header of the safetensors file open as ``stream`` (see module doc)."""
    size = os.fstat(stream.fileno()).st_size
    stream.seek(0)
    prefix = _read_exactly(stream, min(size, LENGTH_BYTES + 1), path)
    if prefix[LENGTH_BYTES:] != b"{":
        _refuse_foreign(path, prefix)
    prefix = prefix[:LENGTH_BYTES]
    if size < LENGTH_BYTES:
        raise CheckpointError(
            f"checkpoint {path} is not a valid safetensors file: it has {size} bytes, fewer than "
            f"the {LENGTH_BYTES}-byte header length field")
    header_length = int.from_bytes(prefix, "little")
    available = size - LENGTH_BYTES
    if header_length > MAX_HEADER_BYTES:
        raise CheckpointError(
            f"checkpoint {path} is not a valid safetensors file (truncated or corrupt): its header "
            f"length field says {header_length} bytes, more than the {MAX_HEADER_BYTES} allowed")
    if header_length > available:
        raise CheckpointError(
            f"checkpoint {path} is not a valid safetensors file (truncated or corrupt): its header "
            f"length field says {header_length} bytes but only {available} bytes follow it")
    stream.seek(LENGTH_BYTES)
    raw = _read_exactly(stream, header_length, path)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise CheckpointError(
            f"checkpoint {path} is not a valid safetensors file (truncated or corrupt): its header "
            f"is not UTF-8 ({err})") from err
    try:
        header = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except _DuplicateKeyError as err:
        raise CheckpointError(
            f"checkpoint {path} is not a valid safetensors file: its header has the key "
            f"{err.key!r} more than once") from err
    except ValueError as err:
        raise CheckpointError(
            f"checkpoint {path} is not a valid safetensors file (truncated or corrupt): its header "
            f"is not valid JSON: {err}") from err
    if not isinstance(header, dict):
        raise CheckpointError(
            f"checkpoint {path} is not a valid safetensors file: its header is a JSON "
            f"{type(header).__name__}, not an object")
    data_start = LENGTH_BYTES + header_length
    metadata = _metadata(path, header.pop(METADATA_KEY, {}))
    tensors = {name: _entry(path, name, entry) for name, entry in header.items()}
    _check_tiling(path, tensors, size - data_start)
    return Layout(path, size, data_start, metadata, tensors)


def read_tensors(
    stream: BinaryIO,
    layout: Layout,
    digests: Mapping[str, Digest] | None = None,
    *,
    use_mmap: bool = False,
) -> dict[str, npt.NDArray[Any]]:
    """The tensors of ``layout`` as NumPy arrays, each tensor's bytes fed to ``digests[name]``.

    Without ``use_mmap`` the data is read in :data:`CHUNK_BYTES` chunks into one writable buffer
    (allocated once, of exactly the size the validated header accounts for) and every array is
    a view of it. With ``use_mmap`` the arrays are read-only views of a private read-only map of
    the file; the map stays valid after the file is replaced or deleted (POSIX keeps the old
    inode). Digests see exactly the stored bytes.
    """
    digests = digests or {}
    data_size = layout.file_size - layout.data_start
    ordered = sorted(layout.tensors.items(), key=lambda item: item[1].begin)
    buffer: Any
    if use_mmap and data_size > 0:
        mapped = mmap.mmap(stream.fileno(), 0, access=mmap.ACCESS_READ)
        buffer = memoryview(mapped)[layout.data_start:]
        for name, spec in ordered:
            digest = digests.get(name)
            if digest is not None:
                for start in range(spec.begin, spec.end, CHUNK_BYTES):
                    digest.update(buffer[start:min(start + CHUNK_BYTES, spec.end)])
    else:
        buffer = np.empty(data_size, dtype=np.uint8).data
        stream.seek(layout.data_start)
        for name, spec in ordered:
            digest = digests.get(name)
            for start in range(spec.begin, spec.end, CHUNK_BYTES):
                chunk = buffer[start:min(start + CHUNK_BYTES, spec.end)]
                _readinto_exactly(stream, chunk, layout.path)
                if digest is not None:
                    digest.update(chunk)
        if stream.read(1):
            raise CheckpointError(f"checkpoint {layout.path} grew while it was being read")
    arrays: dict[str, npt.NDArray[Any]] = {}
    for name, spec in layout.tensors.items():
        dtype = DTYPES[spec.dtype]
        count = math.prod(spec.shape)
        array = np.frombuffer(buffer, dtype=dtype, count=count, offset=spec.begin) if count \
            else np.empty(0, dtype=dtype)
        arrays[name] = array.reshape(spec.shape)
    return arrays


def write_container(
    stream: BinaryIO,
    tensors: Mapping[str, npt.NDArray[Any]],
    metadata: Mapping[str, str] | None = None,
    *,
    digests: Mapping[str, Digest] | None = None,
    final_metadata: Callable[[], Mapping[str, str]] | None = None,
) -> None:
    """Write ``tensors`` (C-contiguous, little-endian arrays) as a safetensors file.

    Tensors are stored in the mapping's order; the header is padded with spaces to a multiple of
    8 bytes, as safetensors does, so every tensor starts 8-byte aligned in the file when earlier
    ones have 8-byte multiple sizes. The array bytes are written straight from the arrays, in
    chunks of :data:`CHUNK_BYTES`, with no serialised copy of the data.

    ``digests`` (tensor name -> :class:`Digest`) are fed each named tensor's bytes, in order,
    while the data is written: on a worker thread when the tensors hold more than
    :data:`THREADED_DIGEST_BYTES` (``zlib.crc32`` and ``hashlib`` release the GIL on large
    buffers, so the digest runs on another core at the same time as the writes), otherwise
    before writing. Every digest is complete when this returns normally.

    ``final_metadata``, when given, is called once the data is written and the digests are
    complete; the header is then written again, at the same place, with its result as
    ``__metadata__``. The header first written (with ``metadata``) reserves the space, so the
    final metadata must serialise to exactly the same length (fixed-width fields such as
    checksums in hex), or ``ValueError`` is raised. This needs a seekable ``stream``; the stream
    position is left at the end of the file.
    """
    header: dict[str, Any] = {}
    views: list[tuple[str, memoryview]] = []
    offset = 0
    for name, array in tensors.items():
        code = _CODES.get(array.dtype.str.lstrip("<|="))
        if code is None or array.dtype.byteorder == ">" or not array.flags.c_contiguous:
            raise ValueError(f"tensor {name!r} must be a C-contiguous little-endian array of a "
                             f"safetensors dtype, got {array.dtype} {array.shape}")
        header[name] = {"dtype": code, "shape": list(array.shape),
                        "data_offsets": [offset, offset + array.nbytes]}
        offset += array.nbytes
        views.append((name, byte_view(array)))
    text = _header_bytes(header, metadata)
    stream.write(len(text).to_bytes(LENGTH_BYTES, "little"))
    stream.write(text)
    todo = [(digests[name], view) for name, view in views if digests and name in digests]
    worker = None
    if sum(len(view) for _, view in todo) > THREADED_DIGEST_BYTES:
        worker = _DigestWorker(todo)
    else:
        _digest_chunks(todo, None)
    fd = _fileno(stream)
    position = stream.tell() if fd is not None else 0
    try:
        for _, view in views:
            for start in range(0, len(view), WRITEBACK_BYTES):
                chunk = view[start:start + WRITEBACK_BYTES]
                _write_all(stream, chunk)
                if fd is not None:
                    start_writeback(fd, position, len(chunk))
                position += len(chunk)
    except BaseException:
        if worker is not None:
            worker.finish(cancel=True)
        raise
    if worker is not None:
        worker.finish(cancel=False)
    if final_metadata is not None:
        final = _header_bytes(header, final_metadata())
        if len(final) != len(text):
            raise ValueError(f"the final safetensors header has {len(final)} bytes, but "
                             f"{len(text)} were reserved for it")
        stream.seek(LENGTH_BYTES)
        stream.write(final)
        stream.seek(0, os.SEEK_END)


def _fileno(stream: BinaryIO) -> int | None:
    """The file descriptor under ``stream``, with its buffer flushed; ``None`` when it has none."""
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation: no descriptor
        return None
    stream.flush()  # a write error here (a full disk) propagates
    return fd


def _header_bytes(header: Mapping[str, Any], metadata: Mapping[str, str] | None) -> bytes:
    """The header JSON (``__metadata__`` first, then the tensors), space-padded to 8 bytes."""
    full: dict[str, Any] = {METADATA_KEY: dict(metadata)} if metadata else {}
    full.update(header)
    text = json.dumps(full, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return text + b" " * (-len(text) % 8)


def _digest_chunks(work: list[tuple[Digest, memoryview]], stop: threading.Event | None) -> None:
    for digest, view in work:
        for start in range(0, len(view), CHUNK_BYTES):
            if stop is not None and stop.is_set():
                return
            digest.update(view[start:start + CHUNK_BYTES])


class _DigestWorker:
    """Feeds ``(digest, bytes)`` pairs, chunk by chunk, on a thread of its own."""

    def __init__(self, work: list[tuple[Digest, memoryview]]) -> None:
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(work,),
                                        name="mlpcore-checksum", daemon=True)
        self._thread.start()

    def _run(self, work: list[tuple[Digest, memoryview]]) -> None:
        try:
            _digest_chunks(work, self._stop)
        except BaseException as err:  # handed to the thread that waits in finish()
            self._error = err

    def finish(self, *, cancel: bool) -> None:
        """Wait for the thread (told to stop early when ``cancel``); re-raise its exception."""
        if cancel:
            self._stop.set()
        self._thread.join()
        if self._error is not None and not cancel:
            raise self._error


def byte_view(array: npt.NDArray[Any]) -> memoryview:
    """The bytes of a C-contiguous array, as a flat memoryview (no copy)."""
    return np.ascontiguousarray(array).reshape(-1).view(np.uint8).data


def _refuse_foreign(path: Path, prefix: bytes) -> None:
    if prefix[:2] in _PICKLE_MAGIC or prefix[:1] == b"\x80":
        raise CheckpointError(
            f"checkpoint {path} is a Python pickle, not a safetensors file; mlpcore never "
            "unpickles a checkpoint (a pickle can run code when loaded)")
    if prefix[:4] == _ZIP_MAGIC:
        raise CheckpointError(
            f"checkpoint {path} is a zip archive (a torch.save file?), not a safetensors file; "
            "import it with format='torch-state-dict'")


def _write_all(stream: BinaryIO, view: memoryview) -> None:
    done = 0
    while done < len(view):
        written = stream.write(view[done:done + CHUNK_BYTES])
        if not written:
            raise OSError("write() wrote nothing")
        done += written


def _read_exactly(stream: BinaryIO, count: int, path: Path) -> bytes:
    data = stream.read(count) if count else b""
    if len(data) != count:
        raise CheckpointError(f"checkpoint {path} was truncated while it was being read")
    return data


def _readinto_exactly(stream: BinaryIO, view: memoryview, path: Path) -> None:
    done = 0
    while done < len(view):
        got = stream.readinto(view[done:])  # type: ignore[attr-defined]
        if not got:
            raise CheckpointError(f"checkpoint {path} was truncated while it was being read")
        done += got


class _DuplicateKeyError(ValueError):
    def __init__(self, key: str):
        super().__init__(key)
        self.key = key


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKeyError(key)
        result[key] = value
    return result


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _metadata(path: Path, metadata: Any) -> dict[str, str]:
    if not isinstance(metadata, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
        raise CheckpointError(
            f"checkpoint {path} is not a valid safetensors file: {METADATA_KEY} must map strings "
            "to strings")
    return metadata


def name_problem(name: str) -> str | None:
    """Why ``name`` is refused as a tensor name, or ``None`` when it is acceptable."""
    if not name or len(name) > MAX_NAME_LENGTH:
        return f"must have 1 to {MAX_NAME_LENGTH} characters"
    if _BAD_NAME.search(name):
        return "contains a NUL or other control character"
    if name.startswith("/") or ".." in name.split("/"):
        return "looks like a path that escapes its folder ('..' segment or leading '/')"
    return None


def _entry(path: Path, name: str, entry: Any) -> TensorSpec:
    problem = name_problem(name)
    if problem is not None:
        raise CheckpointError(f"checkpoint {path}: tensor name {name!r} {problem}")
    where = f"checkpoint {path}: tensor {name!r}"
    if not isinstance(entry, dict) or set(entry) != _ENTRY_KEYS:
        raise CheckpointError(f"{where} must have exactly the keys dtype, shape and "
                              f"data_offsets, got {entry!r:.200}")
    dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if dtype not in DTYPES:
        raise CheckpointError(f"{where} has unknown or unsupported dtype {dtype!r:.40} "
                              f"(known: {', '.join(DTYPES)})")
    if not (isinstance(shape, list) and len(shape) <= MAX_RANK
            and all(_is_count(n) for n in shape)):
        raise CheckpointError(f"{where} has an invalid shape {shape!r:.200}: expected at most "
                              f"{MAX_RANK} non-negative integers")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(_is_count(n) for n in offsets)):
        raise CheckpointError(f"{where} has invalid data_offsets {offsets!r:.200}: expected "
                              "[BEGIN, END], non-negative integers")
    begin, end = offsets
    if end < begin:
        raise CheckpointError(f"{where} has data_offsets [{begin}, {end}]: END < BEGIN")
    expected = math.prod(shape) * DTYPES[dtype].itemsize
    if expected != end - begin:
        raise CheckpointError(
            f"{where} is {dtype} {tuple(shape)}, which needs {expected} bytes, but its "
            f"data_offsets [{begin}, {end}] hold {end - begin}")
    return TensorSpec(dtype, tuple(shape), begin, end)


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**63


def _check_tiling(path: Path, tensors: dict[str, TensorSpec], data_size: int) -> None:
    position = 0
    previous = "the start of the data"
    for name, spec in sorted(tensors.items(), key=lambda item: (item[1].begin, item[1].end)):
        if spec.begin < position:
            raise CheckpointError(
                f"checkpoint {path}: tensor {name!r} (bytes {spec.begin}-{spec.end}) overlaps "
                f"{previous}")
        if spec.begin > position:
            raise CheckpointError(
                f"checkpoint {path}: there is a gap of {spec.begin - position} bytes before "
                f"tensor {name!r}")
        position = spec.end
        previous = f"tensor {name!r}"
    if position > data_size:
        raise CheckpointError(
            f"checkpoint {path} is not a valid safetensors file (truncated or corrupt): its "
            f"tensors need {position} bytes of data but the file holds {data_size}")
    if position < data_size:
        raise CheckpointError(
            f"checkpoint {path} is not a valid safetensors file (truncated or corrupt): "
            f"{data_size - position} bytes follow the last tensor (appended data?)")


def sniff(path: Path) -> bool:
    """Whether ``path`` starts like a safetensors file (a plausible length, then ``{``)."""
    try:
        with open(path, "rb") as stream:
            prefix = stream.read(LENGTH_BYTES + 1)
            size = os.fstat(stream.fileno()).st_size
    except OSError:
        return False
    if len(prefix) < LENGTH_BYTES + 1:
        return False
    length = int.from_bytes(prefix[:LENGTH_BYTES], "little")
    return length <= min(MAX_HEADER_BYTES, size - LENGTH_BYTES) and prefix[8:9] == b"{"

