"""Kind `hand`: seconds per optimizer step with `model.backward=hand` against
`model.backward=autograd`, both through the project. Ratio = hand / autograd, lower is better."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from benchmarks.kinds.two_sided import TwoSided, ratio_target


class HandVsAutograd(TwoSided):
    name = "hand"
    legend = (
        "- hand cases: project = `model.backward=hand`, reference = `model.backward=autograd`, "
        "both through the project; ratio = hand / autograd step time (lower is better)"
    )
    measured, reference = "hand", "autograd"

    def jobs(self, cfg, overrides: list[str], work: Path) -> dict[str, dict]:
        return {
            side: {"program": "project", "overrides": [*overrides, f"model.backward={side}"]}
            for side in ("hand", "autograd")
        }

    def measure(self, cfg) -> tuple[str, Callable[[dict], float]]:
        return "ms/step", lambda run: 1000 * run["fit_s"] / run["steps"]

    def verdict(self, case, cfg, runs: dict, medians: dict, ratio: float) -> dict:
        return ratio_target(ratio, case.target, at_least=False)
