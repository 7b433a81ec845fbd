"""`python -m benchmarks` (all cases), `--cases seed003 d2l`, `--skip quality`, `--quick` (a few
steps per case), `--reps 5`, `--out-dir DIR`; see benchmarks/runner.py."""

import sys

from benchmarks.runner import main

if __name__ == "__main__":
    sys.exit(main())
