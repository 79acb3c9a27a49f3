"""Goal: ``import mlpcore`` then ``list_backends()`` in under 0.2 s, importing no framework.

Each measurement is a fresh interpreter; the interpreter's own start-up (``python -c pass``) is
measured the same way and subtracted.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

GOAL_SECONDS = 0.2
RUNS = 7
PROBE = ("import sys, mlpcore; names = mlpcore.list_backends(); "
         "print(','.join(m for m in ('torch', 'tensorflow', 'jax') if m in sys.modules))")


def timed(code: str) -> tuple[float, str]:
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return time.perf_counter() - started, out.stdout.strip()


def main() -> int:
    bare = [timed("pass")[0] for _ in range(RUNS)]
    runs = [timed(PROBE) for _ in range(RUNS)]
    frameworks = {out for _, out in runs if out}
    cost = [t - statistics.median(bare) for t, _ in runs]
    print(f"import mlpcore + list_backends(): median {statistics.median(cost):.3f} s "
          f"(min {min(cost):.3f}, max {max(cost):.3f}; interpreter start-up "
          f"{statistics.median(bare):.3f} s subtracted), goal < {GOAL_SECONDS} s")
    print(f"frameworks imported: {', '.join(sorted(frameworks)) or 'none'}")
    ok = statistics.median(cost) < GOAL_SECONDS and not frameworks
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
