"""Kind `compile`: the project's whole `trainer.fit` seconds with `model.compile=true`
(compilation included) against `model.compile=false`, and the compile seconds the run logs
(`time/compile_s`): cold in the first run (an empty compile cache of the case's own), warm in the
later ones. Ratio = compiled / eager, lower is better; the target is that the recipe's default
(`model.compile` in its config) is the faster of the two.
"""

from __future__ import annotations

import statistics
from pathlib import Path

from benchmarks.kinds.two_sided import TwoSided

COMPILE_METRIC = "time/compile_s"  # what a model.compile=true run logs (metrics.json: last/...)


class CompiledVsEager(TwoSided):
    name = "compile"
    legend = (
        "- compile cases: whole-fit seconds with `model.compile=true` (compiling included) and "
        f"`=false`; ratio = compiled / eager (lower is better); `{COMPILE_METRIC}` cold in the "
        "first run, warm in the later ones"
    )
    measured, reference = "compiled", "eager"

    def jobs(self, cfg, overrides: list[str], work: Path) -> dict[str, dict]:
        cache = {"TORCHINDUCTOR_CACHE_DIR": str(work / "compile-cache")}  # cold in the first run
        return {
            "compiled": {
                "program": "project",
                "overrides": [*overrides, "model.compile=true"],
                "env": cache,
            },
            "eager": {"program": "project", "overrides": [*overrides, "model.compile=false"]},
        }

    def verdict(self, case, cfg, runs: dict, medians: dict, ratio: float) -> dict:
        default = "compiled" if cfg.model.compile else "eager"
        return {
            "ratio": ratio,
            "target": f"the default ({default}) is the faster",
            "target_met": medians[default] <= min(medians.values()),
            "notes": {"compiled": compile_note(runs["compiled"])},
        }


def compile_note(runs: list[dict]) -> str:
    """The compile seconds the compiled runs log: the first run's (cold cache), the median of
    the later ones (warm)."""
    seconds = [r["metrics"].get(f"last/{COMPILE_METRIC}") for r in runs]
    if None in seconds:
        return f"{COMPILE_METRIC} not logged"
    warm = f", warm {statistics.median(seconds[1:]):.3g} s" if len(seconds) > 1 else ""
    return f"compile {seconds[0]:.3g} s cold{warm}"
