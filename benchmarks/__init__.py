"""The benchmark: `python -m benchmarks` times the project's training path against references
(plain PyTorch loops of the same math, d2l's own Trainer, the project in another mode).

- `runner.py`: the command: options, each chosen case in turn, the report files.
- `cases.py`: the table of cases, each of one kind.
- `kinds/`: one module a kind of case: what it measures, the jobs it runs, its row.
- `child.py`: one measurement in a process of its own (a job: a project run, a plain loop, ...).
- `report.py`, `cells.py`: the machine line and `benchmark.md`; how a value shows in a cell.
- `plain_loops.py`, `d2l_trainer.py`: the references (plain PyTorch; d2l's `d2l.Trainer`).
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]  # the checkout: conf/ and this folder
CONF = ROOT / "conf"


class BenchmarkError(RuntimeError):
    """A measurement that could not be taken (its child process failed, or a recipe a reference
    cannot express)."""
