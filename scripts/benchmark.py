"""Benchmark the project's training path against plain PyTorch loops of the same math.

`python scripts/benchmark.py` (all cases), `--cases seed003 d2l`, `--skip quality`, `--quick`
(a few steps per case), `--reps 5`, `--out-dir DIR`; see handgrad.benchmark.
"""

import sys

from handgrad.benchmark import main

if __name__ == "__main__":
    sys.exit(main())
