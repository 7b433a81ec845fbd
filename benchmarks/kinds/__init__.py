"""The kinds of case, one module each, with what it measures in its docstring:

- `plain` (`against_plain.py`): the project's throughput against a plain PyTorch loop.
- `hand` (`hand_vs_autograd.py`): step time with hand-derived gradients against autograd's.
- `trainer` (`against_d2l.py`): whole-fit seconds against d2l's own `d2l.Trainer`.
- `compile` (`compiled_vs_eager.py`): whole-fit seconds with `model.compile=true` against false.
- `quality` (`time_to_quality.py`): the best val/ppl within each budget of training seconds.
- `quality_plain` (`quality_against_plain.py`): the same for the project and the plain loop of
  its recipe, each for the same budget, and their tokens/s.
- `memory` (`step_memory.py`): the peak memory a training step adds, hand against autograd.

The five that compare two sides run by run share `two_sided.TwoSided`.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Protocol

from benchmarks.kinds.against_d2l import AgainstD2LTrainer
from benchmarks.kinds.against_plain import AgainstPlainLoop
from benchmarks.kinds.compiled_vs_eager import CompiledVsEager
from benchmarks.kinds.hand_vs_autograd import HandVsAutograd
from benchmarks.kinds.quality_against_plain import QualityAgainstPlain
from benchmarks.kinds.step_memory import HandStepMemory
from benchmarks.kinds.time_to_quality import TimeToQuality


class Kind(Protocol):
    """What every kind of case does; the runner and the report ask it, never its name."""

    name: str  # the case's "kind" in benchmark.json
    legend: str  # its line above the table in benchmark.md

    def run(self, case, overrides: list[str], args: argparse.Namespace, work: Path) -> dict:
        """Every measurement of `case`: the results its row is made of."""

    def summary(self, result: dict) -> str:
        """The line printed when the case is done."""

    def row(self, result: dict) -> list[str]:
        """Its row of the table."""

    def sections(self, result: dict) -> list[str]:
        """Markdown lines below the table."""


PLAIN = AgainstPlainLoop()
HAND = HandVsAutograd()
TRAINER = AgainstD2LTrainer()
COMPILE = CompiledVsEager()
QUALITY = TimeToQuality()
QUALITY_PLAIN = QualityAgainstPlain()
MEMORY = HandStepMemory()
KINDS: dict[str, Kind] = {
    kind.name: kind for kind in (PLAIN, HAND, MEMORY, TRAINER, COMPILE, QUALITY, QUALITY_PLAIN)
}
