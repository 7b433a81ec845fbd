"""The benchmark: `python -m benchmarks` (the runner, `runner.py`) times the project's training
path against plain PyTorch loops of the same math (`plain_loops.py`)."""
