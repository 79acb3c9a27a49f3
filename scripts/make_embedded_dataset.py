"""Make the Fashion-MNIST subset embedded in ``mlpcore/data/embedded/`` from the full dataset.

Reads the four Fashion-MNIST IDX files installed by Debian's ``dataset-fashion-mnist`` package
(``apt-get install dataset-fashion-mnist``; or any directory holding the same files), picks a
class-balanced random subset with a fixed seed, and writes it as gzipped IDX files with the
standard names::

    train-images-idx3-ubyte.gz  train-labels-idx1-ubyte.gz   5,000 images, 500 per class
    t10k-images-idx3-ubyte.gz   t10k-labels-idx1-ubyte.gz    1,000 images, 100 per class

One ``numpy.random.default_rng(SEED)`` generator draws, in this order: for each class 0..9 the
training rows of that class (without replacement), a permutation of the 5,000 chosen rows, then
the same for the test file. The gzip streams have no file name and a zero timestamp, so running
this again writes the same bytes (given the same zlib). Run from the repository root::

    python scripts/make_embedded_dataset.py            # rewrite mlpcore/data/embedded/
    python scripts/make_embedded_dataset.py --check    # verify the files there are up to date
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
from pathlib import Path

import numpy as np
import numpy.typing as npt

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from mlpcore.data.datasets import FILE_NAMES, find_idx_file  # noqa: E402
from mlpcore.data.idx import read_idx, write_idx  # noqa: E402

SEED = 20170828
TRAIN_PER_CLASS = 500
TEST_PER_CLASS = 100
DEFAULT_SOURCE = Path("/usr/share/datasets/fashion-mnist")
DEFAULT_OUT = REPO / "mlpcore" / "data" / "embedded"


def balanced_subset(labels: npt.NDArray[np.integer], per_class: int,
                    rng: np.random.Generator) -> npt.NDArray[np.intp]:
    """Row numbers (int, (n_classes * per_class,)): ``per_class`` rows of each class, shuffled."""
    classes = np.unique(labels)
    picks = []
    for label in classes:
        rows = np.flatnonzero(labels == label)
        if len(rows) < per_class:
            raise SystemExit(f"class {label} has only {len(rows)} rows, fewer than {per_class}")
        picks.append(rng.choice(rows, size=per_class, replace=False))
    return rng.permutation(np.concatenate(picks))


def make(source: Path, out: Path, seed: int = SEED) -> list[Path]:
    """Write the subset of the dataset in ``source`` into ``out``; return the files written."""
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for split, per_class in (("train", TRAIN_PER_CLASS), ("test", TEST_PER_CLASS)):
        images = read_idx(find_idx_file(source, FILE_NAMES[f"{split}_images"]))
        labels = read_idx(find_idx_file(source, FILE_NAMES[f"{split}_labels"]))
        rows = balanced_subset(labels, per_class, rng)
        for kind, values in (("images", images), ("labels", labels)):
            target = out / f"{FILE_NAMES[f'{split}_{kind}']}.gz"
            write_idx(target, values[rows], compress=True)
            written.append(target)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE,
                        help=f"directory of the full Fashion-MNIST IDX files (default: "
                             f"{DEFAULT_SOURCE})")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help=f"directory to write the subset into (default: {DEFAULT_OUT})")
    parser.add_argument("--seed", type=int, default=SEED, help=f"default: {SEED}")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 unless the files in --out are what this "
                             "script would write")
    args = parser.parse_args(argv)

    if not args.check:
        for path in make(args.source, args.out, args.seed):
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            print(f"{path.stat().st_size:>9}  {digest}  {path}")
        return 0
    with tempfile.TemporaryDirectory() as scratch:
        stale = [args.out / path.name for path in make(args.source, Path(scratch), args.seed)
                 if not (args.out / path.name).is_file()
                 or (args.out / path.name).read_bytes() != path.read_bytes()]
    for path in stale:
        print(f"out of date or missing: {path}")
    if not stale:
        print(f"{args.out}: up to date")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
