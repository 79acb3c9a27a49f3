"""Hostile and broken checkpoint files: each one is refused with a CheckpointError naming the file
(and the variable, where one is at fault), assigns nothing, allocates nothing large, never hangs.
"""

from __future__ import annotations

import json
import os
import pickle
import signal
import tracemalloc
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mlpcore.errors import CheckpointError
from mlpcore.io.checkpoint import load, read_checkpoint, save
from mlpcore.io.interop import load_into
from mlpcore.model import MLP
from mlpcore.spec import MLPSpec

SPEC = MLPSpec(sizes=(4, 8, 3), activation="tanh")


@pytest.fixture(autouse=True)
def no_hang() -> Iterator[None]:
    """Fail (rather than hang) any case that takes longer than 10 s."""

    def expire(signum: int, frame: object) -> None:
        raise TimeoutError("the case hung")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(10)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def valid_bytes(tmp_path: Path) -> bytes:
    return save(MLP(SPEC, seed=3), tmp_path / "valid.safetensors").read_bytes()


def split(data: bytes) -> tuple[dict[str, Any], bytes]:
    n = int.from_bytes(data[:8], "little")
    return json.loads(data[8:8 + n]), data[8 + n:]


def join(header: dict[str, Any] | bytes, body: bytes, length: int | None = None) -> bytes:
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    return (len(raw) if length is None else length).to_bytes(8, "little") + raw + body


def edit(change: Callable[[dict[str, Any]], None]) -> Callable[[bytes], bytes]:
    def make(data: bytes) -> bytes:
        header, body = split(data)
        change(header)
        return join(header, body)
    return make


def manifest_edit(change: Callable[[dict[str, Any]], None]) -> Callable[[bytes], bytes]:
    def alter(header: dict[str, Any]) -> None:
        manifest = json.loads(header["__metadata__"]["mlpcore"])
        change(manifest)
        header["__metadata__"]["mlpcore"] = text = json.dumps(manifest)
        header["__metadata__"]["mlpcore_manifest_crc32"] = f"{zlib.crc32(text.encode()):08x}"
    return edit(alter)


def manifest_text_edit(change: Callable[[str], str]) -> Callable[[bytes], bytes]:
    """Edit the manifest as text (for what ``json`` cannot write), its checksum kept valid."""
    def alter(header: dict[str, Any]) -> None:
        header["__metadata__"]["mlpcore"] = text = change(header["__metadata__"]["mlpcore"])
        header["__metadata__"]["mlpcore_manifest_crc32"] = f"{zlib.crc32(text.encode()):08x}"
    return edit(alter)


DEEP = "[" * 2000 + "]" * 2000  # 4 KB nested 2,000 deep: beyond Python's recursion limit


def rename(old: str, new: str) -> Callable[[dict[str, Any]], None]:
    def change(header: dict[str, Any]) -> None:
        header[new] = header.pop(old)
    return change


def set_entry(name: str, **values: Any) -> Callable[[dict[str, Any]], None]:
    def change(header: dict[str, Any]) -> None:
        header[name].update(values)
    return change


def first_tensor(header: dict[str, Any]) -> str:
    names = [n for n in header if n != "__metadata__"]
    return min(names, key=lambda n: header[n]["data_offsets"][0])


def overlap(header: dict[str, Any]) -> None:
    names = sorted((n for n in header if n != "__metadata__"),
                   key=lambda n: header[n]["data_offsets"][0])
    begin, end = header[names[1]]["data_offsets"]
    header[names[1]]["data_offsets"] = [begin - 4, end - 4]


def end_before_begin(header: dict[str, Any]) -> None:
    name = first_tensor(header)
    begin, end = header[name]["data_offsets"]
    header[name]["data_offsets"] = [end, begin]


def wrong_payload_length(header: dict[str, Any]) -> None:
    header["dense_0/weights"]["shape"] = [4, 9]


def duplicate_names(data: bytes) -> bytes:
    header, body = split(data)
    text = json.dumps(header)
    entry = json.dumps(header["dense_1/bias"])
    return join(text[:-1].encode() + f', "dense_1/bias": {entry}}}'.encode(), body)


def flip_bit(data: bytes) -> bytes:
    out = bytearray(data)
    out[-2] ^= 0x04
    return bytes(out)


def non_utf8(data: bytes) -> bytes:
    header, body = split(data)
    raw = json.dumps(header).encode()
    raw = raw.replace(b'"dense_1/bias": {', b'"dense_1/b\xffas": {')
    assert b"\xff" in raw
    return join(raw, body)


# (id, how to make the file from a valid one, fragments the message must contain)
CASES: list[tuple[str, Callable[[bytes], bytes], tuple[str, ...]]] = [
    ("empty", lambda d: b"", ("0 bytes",)),
    ("shorter-than-length-field", lambda d: d[:5], ("5 bytes",)),
    ("truncated-in-header", lambda d: d[:40], ("truncated or corrupt",)),
    ("truncated-in-data", lambda d: d[:-7], ("truncated or corrupt",)),
    ("header-length-2^40", lambda d: (2**40).to_bytes(8, "little") + d[8:], ("header length",)),
    ("appended-bytes", lambda d: d + b"\x00" * 16, ("follow the last tensor",)),
    ("overlapping-offsets", edit(overlap), ("overlaps",)),
    ("end-before-begin", edit(end_before_begin), ("END < BEGIN",)),
    ("shape-times-dtype-not-payload", edit(wrong_payload_length), ("'dense_0/weights'", "needs")),
    ("negative-shape", edit(set_entry("dense_0/bias", shape=[-8])), ("'dense_0/bias'", "shape")),
    ("overflowing-shape", edit(set_entry("dense_0/bias", shape=[2**64, 2**64])),
     ("'dense_0/bias'", "shape")),
    ("huge-shape-product", edit(set_entry("dense_0/bias", shape=[2**40, 2**40])),
     ("'dense_0/bias'", "needs")),
    ("unknown-dtype", edit(set_entry("dense_0/bias", dtype="Q7")),
     ("'dense_0/bias'", "unknown or unsupported dtype")),
    ("bf16-dtype", edit(set_entry("dense_0/bias", dtype="BF16")), ("'dense_0/bias'", "BF16")),
    ("dtype-not-a-string", edit(set_entry("dense_0/bias", dtype=["F32"])),
     ("'dense_0/bias'", "unknown or unsupported dtype ['F32']")),
    ("invalid-json", lambda d: join(b"{not json" + b" " * 7, b""), ("not valid JSON",)),
    ("header-not-object", lambda d: join(b"[1, 2, 3]", b""), ("not an object",)),
    ("non-utf8-header", non_utf8, ("not UTF-8",)),
    ("duplicate-names", duplicate_names, ("'dense_1/bias' more than once",)),
    ("flipped-payload-bit", flip_bit, ("checksum",)),
    ("pickle", lambda d: pickle.dumps({"dense_0/weights": np.zeros(3)}), ("pickle",)),
    ("manifest-names-callable", manifest_edit(lambda m: m.update(backend="os:system")),
     ("os:system",)),
    ("manifest-field-names-module", manifest_edit(lambda m: m.update(loader="subprocess:run")),
     ("subprocess:run", "never imports")),
    ("name-with-dotdot", edit(rename("dense_0/bias", "../dense_0/bias")), ("'../dense_0/bias'",)),
    ("name-with-nul", edit(rename("dense_0/bias", "dense_0/bias\x00x")), ("NUL",)),
    ("metadata-not-strings", edit(lambda h: h.update({"__metadata__": {"mlpcore": 1}})),
     ("__metadata__",)),
    ("gap-between-tensors", edit(set_entry("dense_0/weights", data_offsets=[10**6, 10**6 + 128])),
     ("gap",)),
    ("manifest-edited", edit(lambda h: h["__metadata__"].update(
        mlpcore=h["__metadata__"]["mlpcore"].replace("tanh", "relu"))),
     ("manifest fails its checksum",)),
    ("extra-entry-key", edit(set_entry("dense_0/bias", code="x")), ("exactly the keys",)),
    ("header-nested-2000-deep", lambda d: join(f'{{"x": {DEEP}}}'.encode(), b""),
     ("its header nests deeper than 64 levels",)),
    ("manifest-nested-2000-deep", manifest_text_edit(lambda t: f'{t[:-1]}, "note": {DEEP}}}'),
     ("the mlpcore manifest nests deeper than 64 levels",)),
    ("manifest-duplicate-key",
     manifest_text_edit(lambda t: t[:-1] + ', "format": "mlpcore.checkpoint"}'),
     ("the mlpcore manifest", "the key 'format' more than once")),
]


@pytest.mark.parametrize(("make", "fragments"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_hostile_file_is_refused_and_assigns_nothing(
    tmp_path: Path, make: Callable[[bytes], bytes], fragments: tuple[str, ...]
) -> None:
    path = tmp_path / "hostile.safetensors"
    path.write_bytes(make(valid_bytes(tmp_path)))
    model = MLP(SPEC, seed=11)
    before = model.variables

    tracemalloc.start()
    try:
        with pytest.raises(CheckpointError) as info:
            read_checkpoint(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    message = str(info.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message, message
    assert peak < 4 << 20, f"refusing the file allocated {peak} bytes"

    for attempt in (lambda: load(path), lambda: load_into(model, path)):
        with pytest.raises(CheckpointError):
            attempt()
    for name, value in model.variables.items():
        np.testing.assert_array_equal(value, before[name])


def test_a_repeated_key_among_many_is_found_in_linear_time(tmp_path: Path) -> None:
    """200,000 keys (3 MB) and one repeated: refused at once (a quadratic search took minutes)."""
    path = tmp_path / "keys.safetensors"
    text = "{" + ", ".join(f'"k{i}": 0' for i in range(200_000)) + ', "k0": 0}'
    path.write_bytes(join(text.encode(), b""))
    with pytest.raises(CheckpointError, match="the key 'k0' more than once") as info:
        read_checkpoint(path)
    assert str(path) in str(info.value)


SPECIAL_FILES: list[tuple[str, Callable[[Path], None], str]] = [
    ("symlink", lambda p: p.symlink_to(save(MLP(SPEC), p.with_name("real.safetensors"))),
     "symbolic link"),
    ("symlink-to-a-device", lambda p: p.symlink_to("/dev/zero"), "symbolic link"),  # unread
    ("fifo", os.mkfifo, "not a regular file"),  # without hanging
]


@pytest.mark.parametrize(("make", "refusal"), [c[1:] for c in SPECIAL_FILES],
                         ids=[c[0] for c in SPECIAL_FILES])
def test_special_file_is_refused(tmp_path: Path, make: Callable[[Path], None],
                                 refusal: str) -> None:
    path = tmp_path / "special.safetensors"
    make(path)
    with pytest.raises(CheckpointError, match=refusal) as info:
        read_checkpoint(path)
    assert str(path) in str(info.value)


def test_saving_onto_a_symlink_is_refused_and_leaves_both_alone(tmp_path: Path) -> None:
    real = save(MLP(SPEC, seed=1), tmp_path / "real.safetensors")
    original = real.read_bytes()
    link = tmp_path / "link.safetensors"
    link.symlink_to(real)
    with pytest.raises(CheckpointError, match="symbolic link") as info:
        save(MLP(SPEC, seed=2), link)
    assert str(link) in str(info.value)
    assert link.is_symlink() and real.read_bytes() == original


def test_a_valid_file_passes_the_same_checks(tmp_path: Path) -> None:
    """The hostile cases are edits of this file, which loads: the refusals are the edits'."""
    path = tmp_path / "valid.safetensors"
    path.write_bytes(valid_bytes(tmp_path))
    np.testing.assert_array_equal(load(path).variables["dense_0/weights"],
                                  MLP(SPEC, seed=3).variables["dense_0/weights"])
    header, body = split(path.read_bytes())
    path.write_bytes(join(header, body))  # re-encoded without padding: still valid
    read_checkpoint(path)
