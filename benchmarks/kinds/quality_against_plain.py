"""Kind `quality_plain`: time to quality of the project against the plain PyTorch loop of the same
recipe (`benchmarks/plain_loops.py`), each trained for the same wall-clock budget: the best
held-out val/ppl of each within every budget of QUALITY_BUDGETS, and each side's tokens/s.

The project's run is the `quality` kind's (`benchmarks.child.run_quality`: its val/ppl points at
the wall times of its TensorBoard events, counted from `on_train_start`, `trainer.max_time` the
longest budget). The plain loop (`fit_language_model`) follows the same recipe where it matters:
the composed config's precision (bf16 autocast when the project runs bf16-mixed), lr schedule,
clipping, validation cadence, early stopping, and `max_time_s` = the same budget; its clock starts
before its first batch and each validation's point is taken when it ends. Tokens/s on both sides:
training tokens (steps x batch_size x num_steps) over the seconds of the whole fit, validation
included. One run a side (project, then plain): `--reps` does not apply.

Met: the project's best val/ppl within the longest budget is at most the plain loop's, and its
`quality_targets` (if any) and tokens/s ratio project / plain >= `target` (if any) hold.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from benchmarks import CONF
from benchmarks.cells import MET, fmt
from benchmarks.child import run_child
from benchmarks.kinds.against_plain import plain_spec, tokens_per_step
from benchmarks.kinds.time_to_quality import (
    QUALITY_BUDGETS,
    QUICK_TIME_SCALE,
    TimeToQuality,
    budget_table,
    quality_result,
    run_facts,
    targets_text,
)
from handgrad.run.compose import compose_run

SIDES = ("project", "plain")
OWN_TOKENS_PER_S = "perf/tokens_per_s"  # the language models' own, over their training steps


class QualityAgainstPlain(TimeToQuality):
    name = "quality_plain"
    legend = (
        "- quality_plain: the project and a plain PyTorch loop of the same recipe (precision, lr "
        "schedule, clipping, early stopping), each trained for the longest budget: best val/ppl "
        "within each budget of training seconds; tokens/s over each whole fit; ratio = project / "
        "plain tokens/s"
    )

    def run(self, case, overrides: list[str], args: argparse.Namespace, work: Path) -> dict:
        scale = QUICK_TIME_SCALE if args.quick else 1.0
        seconds = scale * max(QUALITY_BUDGETS)
        cfg = compose_run(CONF, overrides, work / "composed")
        jobs = {
            "project": {"program": "quality", "overrides": overrides, "seconds": seconds},
            "plain": {"program": "plain", "spec": {**plain_spec(cfg), "max_time_s": seconds}},
        }
        runs = {side: run_child(job, work / side, args.threads) for side, job in jobs.items()}
        return self.compare(case, cfg, runs, scale)

    def compare(self, case, cfg, runs: dict[str, dict], scale: float) -> dict:
        """Each side's reading (`quality_result`), tokens/s, and the verdict."""
        per_step = tokens_per_step(cfg)
        sides = {}
        for side in SIDES:
            sides[side] = quality_result(runs[side], scale, case.quality_targets)
            sides[side]["tokens_per_s"] = runs[side]["steps"] * per_step / runs[side]["fit_s"]
        longest = f"{scale * max(QUALITY_BUDGETS):g}"
        best = {side: sides[side]["ppl_within"][longest] or math.inf for side in SIDES}
        ratio = sides["project"]["tokens_per_s"] / sides["plain"]["tokens_per_s"]
        verdicts = [best["project"] <= best["plain"]]
        target = [f"<= plain's within {longest} s"]
        if case.quality_targets:
            verdicts.append(sides["project"]["target_met"])
            target.insert(0, targets_text(sides["project"]["targets"]))
        if case.target is not None:
            verdicts.append(ratio >= case.target)
            target.append(f"tokens/s >= {case.target:g}x")
        return {
            "sides": list(SIDES),
            "runs": sides,
            "ppl_within": {side: sides[side]["ppl_within"] for side in SIDES},
            "tokens_per_s": {side: sides[side]["tokens_per_s"] for side in SIDES},
            "ratio": ratio,
            "target": ", ".join(target),
            "target_met": all(verdicts),
            "peak_rss_mb": {side: runs[side]["peak_rss_mb"] for side in SIDES},
        }

    def summary(self, result: dict) -> str:
        return "; ".join(
            f"{side}: best val/ppl within "
            + ", ".join(f"{b} s {fmt(p)}" for b, p in result["ppl_within"][side].items())
            + f", {fmt(result['tokens_per_s'][side])} tokens/s"
            for side in SIDES
        )

    def row(self, result: dict) -> list[str]:
        budgets = list(result["ppl_within"]["project"])
        rss = result["peak_rss_mb"]
        return [
            result["name"],
            f"best val/ppl within {' / '.join(budgets)} s; tokens/s",
            *(side_cell(result, side) for side in SIDES),
            f"{result['ratio']:.2f}x tokens/s",
            result["target"],
            MET[result["target_met"]],
            f"{rss['project']:.0f} / {rss['plain']:.0f}",
        ]

    def sections(self, result: dict) -> list[str]:
        """Below the table: both sides' best val/ppl within every budget, and each run's facts."""
        within = result["ppl_within"]
        lines = budget_table(result["title"], {f"{s}: best val/ppl": within[s] for s in SIDES})
        lines.append("")
        for side in SIDES:
            run = result["runs"][side]
            own = run.get("metrics", {}).get(f"last/{OWN_TOKENS_PER_S}")
            logged = f" ({OWN_TOKENS_PER_S} {fmt(own)}, training steps only)" if own else ""
            lines.append(
                f"- {side}: " + run_facts(run, f", {fmt(run['tokens_per_s'])} tokens/s{logged}")
            )
        return lines


def side_cell(result: dict, side: str) -> str:
    within = " / ".join(fmt(ppl) for ppl in result["ppl_within"][side].values())
    return f"{within}; {fmt(result['tokens_per_s'][side])} ({side})"
