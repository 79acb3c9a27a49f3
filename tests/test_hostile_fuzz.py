"""Fuzzing checkpoint reading with Hypothesis byte mutations of valid files.

Every mutated file must either load identically (same manifest, same variable bytes) or raise
:class:`CheckpointError`: never another exception, never a hang (each read runs under a 10 s
alarm). Under pytest this runs a small number of examples; ``nox -s fuzz`` runs it as a script:

    python tests/test_hostile_fuzz.py --examples 5000

which prints how many mutated files were tried, how many loaded identically and how many were
refused, and exits non-zero on any other outcome.
"""

from __future__ import annotations

import argparse
import collections
import os
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlpcore.errors import CheckpointError
from mlpcore.io.checkpoint import Checkpoint, read_checkpoint, save
from mlpcore.model import MLP
from mlpcore.spec import MLPSpec

PYTEST_EXAMPLES = int(os.environ.get("MLPCORE_FUZZ_EXAMPLES", "150"))
OUTCOMES: collections.Counter[str] = collections.Counter()
_ORIGINALS: dict[str, tuple[bytes, Checkpoint]] = {}


def originals() -> dict[str, tuple[bytes, Checkpoint]]:
    """Valid files to mutate: float32 and float64, crc32 and sha256 checksums."""
    if not _ORIGINALS:
        with tempfile.TemporaryDirectory() as directory:
            for dtype, checksum in (("float32", "crc32"), ("float64", "sha256")):
                model = MLP(MLPSpec(sizes=(3, 4, 2), activation="relu"), seed=5, dtype=dtype)
                path = save(model, Path(directory) / f"{dtype}.safetensors", checksum=checksum)
                _ORIGINALS[dtype] = (path.read_bytes(), read_checkpoint(path))
    return _ORIGINALS


@st.composite
def mutated(draw: st.DrawFn) -> tuple[str, bytes]:
    key = draw(st.sampled_from(sorted(originals())))
    data = bytearray(originals()[key][0])
    header_end = 8 + int.from_bytes(data[:8], "little")
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(
            ["flip", "byte", "header-byte", "insert", "delete", "truncate", "append", "length",
             "header-text"]))
        size = len(data)
        if size == 0:
            data += draw(st.binary(min_size=1, max_size=16))
            continue
        where = draw(st.integers(0, size - 1))
        if kind == "flip":
            data[where] ^= 1 << draw(st.integers(0, 7))
        elif kind == "byte":
            data[where] = draw(st.integers(0, 255))
        elif kind == "header-byte" and header_end <= size:
            data[draw(st.integers(0, header_end - 1))] = draw(st.integers(0, 255))
        elif kind == "insert":
            data[where:where] = draw(st.binary(min_size=1, max_size=32))
        elif kind == "delete":
            del data[where:where + draw(st.integers(1, 64))]
        elif kind == "truncate":
            del data[where:]
        elif kind == "append":
            data += draw(st.binary(min_size=1, max_size=64))
        elif kind == "length":
            value = draw(st.one_of(st.integers(0, 2**64 - 1), st.integers(0, size + 16)))
            data[:8] = value.to_bytes(8, "little")
        elif kind == "header-text" and header_end <= size:
            token = draw(st.sampled_from([b"-1", b"1e999", b"null", b"[]", b"{}", b'"', b",",
                                          b"18446744073709551616", b"\\u0000", b"..", b"F16"]))
            start = draw(st.integers(8, max(8, header_end - 1)))
            data[start:start + draw(st.integers(0, 8))] = token
    return key, bytes(data)


def _expire(signum: int, frame: object) -> None:
    raise TimeoutError("reading a mutated checkpoint hung")


def check(key: str, data: bytes) -> str:
    """Read ``data`` as a checkpoint; the outcome name, or an AssertionError."""
    original = originals()[key][1]
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "fuzz.safetensors"
        path.write_bytes(data)
        previous = signal.signal(signal.SIGALRM, _expire)
        signal.alarm(10)
        try:
            result = read_checkpoint(path)
        except CheckpointError as error:
            assert str(path) in str(error), str(error)
            return "refused"
        finally:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, previous)
    assert result.manifest == original.manifest, "a mutated file loaded with another manifest"
    assert list(result.variables) == list(original.variables)
    for name, value in original.variables.items():
        got: Any = result.variables[name]
        assert got.dtype == value.dtype and got.tobytes() == value.tobytes(), name
    return "identical"


def fuzz_test(examples: int) -> Any:
    @settings(max_examples=examples, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(mutated())
    def run(case: tuple[str, bytes]) -> None:
        OUTCOMES[check(*case)] += 1
    return run


def test_mutated_files_load_identically_or_are_refused() -> None:
    OUTCOMES.clear()
    fuzz_test(PYTEST_EXAMPLES)()
    assert OUTCOMES["refused"] > 0


def test_check_accepts_the_original() -> None:
    for key, (data, _) in originals().items():
        assert check(key, data) == "identical"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=2000, help="mutated files to try")
    args = parser.parse_args()
    OUTCOMES.clear()
    try:
        fuzz_test(args.examples)()
    except Exception as error:  # report, then fail
        print(f"fuzz: FAIL after {sum(OUTCOMES.values())} files: {type(error).__name__}: {error}")
        return 1
    total = sum(OUTCOMES.values())
    print(f"fuzz: {total} mutated files (asked for {args.examples}): "
          f"{OUTCOMES['identical']} loaded identically, {OUTCOMES['refused']} refused with "
          "CheckpointError, 0 other outcomes")
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
