"""What the kinds of case that time two sides share: each repetition runs one side, then the
other (interleaved, so both see the same machine load); the row shows each side's median, the
measured side first, then the reference, and their ratio against the case's target."""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable
from pathlib import Path

from benchmarks import CONF
from benchmarks.cells import MET, fmt
from benchmarks.child import run_child
from handgrad.run.compose import compose_run


class TwoSided:
    """A kind of case that times two sides; a subclass names them, says which jobs run them
    (`jobs`), what one run's value is (`measure`) and what the ratio must meet (`verdict`)."""

    name: str  # the case's "kind" in benchmark.json
    legend: str  # its line above the table in benchmark.md
    measured: str
    reference: str

    def jobs(self, cfg, overrides: list[str], work: Path) -> dict[str, dict]:
        """The two sides' jobs, in the order each repetition runs them."""
        raise NotImplementedError

    def measure(self, cfg) -> tuple[str, Callable[[dict], float]]:
        """The unit, and one run's value in it: here the whole fit's seconds."""
        return "fit s", lambda run: run["fit_s"]

    def verdict(self, case, cfg, runs: dict, medians: dict, ratio: float) -> dict:
        """The ratio as the table shows it, the target's text, met (None: no target), and
        notes beside each side's value."""
        raise NotImplementedError

    def run(self, case, overrides: list[str], args: argparse.Namespace, work: Path) -> dict:
        """`args.reps` runs of each side, interleaved; medians and their ratio, or `skipped`
        with the reason where a side cannot run here."""
        cfg = compose_run(CONF, overrides, work / "composed")
        jobs = self.jobs(cfg, overrides, work)
        runs = {side: [] for side in jobs}
        for rep in range(args.reps):
            for side, job in jobs.items():
                run = run_child(job, work / f"{side}-{rep}", args.threads)
                if "skipped" in run:
                    return {"skipped": run["skipped"]}
                runs[side].append(run)
        return self.compare(case, cfg, runs)

    def compare(self, case, cfg, runs: dict[str, list[dict]]) -> dict:
        """Each side's value per run, the medians, the ratio and the target."""
        unit, value = self.measure(cfg)
        values = {side: [value(run) for run in side_runs] for side, side_runs in runs.items()}
        medians = {side: statistics.median(v) for side, v in values.items()}
        ratio = medians[self.measured] / medians[self.reference]
        return {
            "sides": [self.measured, self.reference],
            "unit": unit,
            "runs": runs,
            "values": values,
            "median": medians,
            "peak_rss_mb": {s: max(r["peak_rss_mb"] for r in rs) for s, rs in runs.items()},
            **self.verdict(case, cfg, runs, medians, ratio),
        }

    def summary(self, result: dict) -> str:
        a, b = result["sides"]
        unit = result["unit"]
        return (
            f"{a} {fmt(result['median'][a])} {unit}, {b} {fmt(result['median'][b])} {unit}, "
            f"ratio {result['ratio']:.2f}x"
        )

    def row(self, result: dict) -> list[str]:
        a, b = result["sides"]
        notes = result.get("notes", {})
        rss = result["peak_rss_mb"]
        return [
            result["name"],
            result["unit"],
            side_cell(result, a, notes.get(a)),
            side_cell(result, b, notes.get(b)),
            f"{result['ratio']:.2f}x",
            result["target"],
            MET[result["target_met"]],
            f"{rss[a]:.0f} / {rss[b]:.0f}",
        ]

    def sections(self, result: dict) -> list[str]:
        """Markdown lines below the table (none: the row says it all)."""
        return []


def side_cell(result: dict, side: str, note: str | None) -> str:
    return f"{fmt(result['median'][side])} ({side}{', ' + note if note else ''})"


def ratio_target(ratio: float, target: float | None, at_least: bool) -> dict:
    """A ratio against a plain bound: at least `target` (or at most), or no target at all."""
    if target is None:
        return {"ratio": ratio, "target": "-", "target_met": None}
    if at_least:
        return {"ratio": ratio, "target": f">= {target:g}x", "target_met": ratio >= target}
    return {"ratio": ratio, "target": f"<= {target:g}x", "target_met": ratio <= target}
