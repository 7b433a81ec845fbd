"""Kind `quality`: the best held-out val/ppl of one project run within each time budget, and the
seconds to reach a perplexity, read from the wall times of its TensorBoard events (training capped
by `trainer.max_time`; the run itself is `benchmarks.child.run_quality`). A case's targets are its
`quality_targets`: met when the best val/ppl within any one of their budgets is at most its ppl.
One run a case (`--reps` does not apply: each is minutes of training)."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from benchmarks.cells import MET, fmt
from benchmarks.child import run_child

QUALITY_BUDGETS = (60.0, 120.0, 180.0)  # seconds of training
QUALITY_REACH = 4.0  # the quality case also reports the seconds to reach this val/ppl
QUICK_TIME_SCALE = 1 / 30  # --quick: the quality budgets become 2, 4 and 6 s


class TimeToQuality:
    name = "quality"  # the case's "kind" in benchmark.json
    legend = "- quality: best val/ppl within each budget of training seconds"

    def run(self, case, overrides: list[str], args: argparse.Namespace, work: Path) -> dict:
        """One run as long as the longest budget (scaled down by --quick), then its reading."""
        scale = QUICK_TIME_SCALE if args.quick else 1.0
        seconds = scale * max(QUALITY_BUDGETS)
        job = {"program": "quality", "overrides": overrides, "seconds": seconds}
        return quality_result(
            run_child(job, work / "run", args.threads), scale, case.quality_targets
        )

    def summary(self, result: dict) -> str:
        within = ", ".join(f"{b} s: {fmt(p)}" for b, p in result["ppl_within"].items())
        return f"best val/ppl within {within}; {QUALITY_REACH:g} {reach_text(result)}"

    def row(self, result: dict) -> list[str]:
        budgets = [f"{budget:g}" for budget, _ in result["targets"]] or list(result["ppl_within"])
        within = " / ".join(fmt(result["ppl_within"][b]) for b in budgets)
        return [
            result["name"],
            f"best val/ppl within {' / '.join(budgets)} s",
            within,
            "-",
            "-",
            targets_text(result["targets"]),
            MET[result["target_met"]],
            f"{result['peak_rss_mb']:.0f} / -",
        ]

    def sections(self, result: dict) -> list[str]:
        """Below the table: the best val/ppl within every budget, and the run's facts."""
        table = budget_table(result["title"], {"best val/ppl": result["ppl_within"]})
        return [*table, "", run_facts(result)]


def budget_table(title: str, columns: dict[str, dict]) -> list[str]:
    """A section's heading and table: a row a budget, each column's best val/ppl within it."""
    budgets = list(next(iter(columns.values())))
    return [
        "",
        f"## {title}",
        "",
        "| budget (s of training) | " + " | ".join(columns) + " |",
        "|---|" + "---|" * len(columns),
        *(
            f"| {budget} | " + " | ".join(fmt(within[budget]) for within in columns.values()) + " |"
            for budget in budgets
        ),
    ]


def run_facts(run: dict, throughput: str = "") -> str:
    """One run's line below its table: when it reached QUALITY_REACH, its length, precision,
    `throughput` (if given) and peak memory."""
    return (
        f"val/ppl {QUALITY_REACH:g} {reach_text(run)}; {run['epochs']} epochs, {run['steps']} "
        f"steps in {run['fit_s']:.0f} s of fit in {run['precision']}{throughput}; peak RSS "
        f"{run['peak_rss_mb']:.0f} MB"
    )


def quality_result(run: dict, scale: float, targets=()) -> dict:
    """The best val/ppl within each of QUALITY_BUDGETS (times `scale`), whether `targets`
    ((budget s, ppl), its budget times `scale`) are met (None: no target), and the seconds to
    reach QUALITY_REACH (None: not reached)."""
    points = [tuple(point) for point in run["val_ppl_points"]]
    targets = [(scale * budget, ppl) for budget, ppl in targets]
    within = {f"{scale * b:g}": best_within(points, scale * b) for b in QUALITY_BUDGETS}
    met = any((best_within(points, budget) or math.inf) <= ppl for budget, ppl in targets)
    return {
        **run,
        "ppl_within": within,
        "targets": targets,
        "target_met": met if targets else None,
        "reach_s": time_to_reach(points, QUALITY_REACH),
    }


def targets_text(targets) -> str:
    return " or ".join(f"<= {ppl:g} within {budget:g} s" for budget, ppl in targets) or "-"


def best_within(points: list[tuple[float, float]], seconds: float) -> float | None:
    """The lowest value among (elapsed seconds, value) points at or before `seconds`."""
    values = [value for elapsed, value in points if elapsed <= seconds]
    return min(values) if values else None


def time_to_reach(points: list[tuple[float, float]], value: float) -> float | None:
    """The elapsed seconds of the first (elapsed seconds, value) point at or below `value`."""
    return next((elapsed for elapsed, v in points if v <= value), None)


def reach_text(result: dict) -> str:
    seconds = result["reach_s"]
    return "not reached" if seconds is None else f"reached after {seconds:.0f} s"
