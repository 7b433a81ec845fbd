"""Benchmark: the project's training path against plain PyTorch loops of the same math, against
d2l's own Trainer, with and without compilation, and its time to quality.

`python -m benchmarks` runs every measurement in its own subprocess (`benchmarks/child.py`: so
`ru_maxrss` is that run's peak memory and no run inherits another's warm caches or threads),
repetitions interleaved (one side, the other, one side, ...) so both sides see the same machine
load, and reports medians. Each case (`benchmarks/cases.py`) is of one kind, and each kind's
module in `benchmarks/kinds/` says what it measures: `plain`, `hand`, `memory`, `trainer`,
`compile`, `quality`, `quality_plain`.

Results go to `<out-dir>/benchmark.json` (every run's numbers and the machine) and
`<out-dir>/benchmark.md` (the tables printed at the end, `benchmarks/report.py`).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from datetime import datetime
from pathlib import Path

from benchmarks import ROOT, BenchmarkError
from benchmarks.cases import CASE_NAMES, CASES, Case
from benchmarks.docs_table import update_docs
from benchmarks.report import machine, machine_line, render_markdown

DEFAULT_ROOT = Path("outputs") / "benchmark"
DOCS_PAGE = ROOT / "docs" / "benchmarks.md"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Throughput of the project's training path vs plain PyTorch loops.",
    )
    parser.add_argument(
        "--cases", nargs="+", choices=CASE_NAMES, default=list(CASE_NAMES), metavar="CASE",
        help=f"cases to run, in this order (default: all of {', '.join(CASE_NAMES)})",
    )  # fmt: skip
    parser.add_argument(
        "--skip", nargs="+", choices=CASE_NAMES, default=[], metavar="CASE",
        help="cases to leave out, e.g. --skip quality gpt_quality (minutes of training each)",
    )  # fmt: skip
    parser.add_argument("--reps", type=int, default=None, help="repetitions (default 3; quick 1)")
    parser.add_argument("--quick", action="store_true", help="a few steps per case (smoke test)")
    parser.add_argument(
        "--docs",
        action="store_true",
        help="also put the cases' rows into docs/benchmarks.md's table (make bench does; "
        "not with --quick)",
    )
    parser.add_argument(
        "--threads", type=int, default=None,
        help="torch intra-op threads in every run (default: torch's own choice)",
    )  # fmt: skip
    parser.add_argument(
        "--out-dir", type=Path, default=None,
        help=f"where benchmark.json and benchmark.md go (default {DEFAULT_ROOT}/<stamp>)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    args.reps = args.reps or (1 if args.quick else 3)
    if args.reps < 1:
        parser.error("--reps must be >= 1")
    if args.threads is not None and args.threads < 1:
        parser.error("--threads must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    by_name = {case.name: case for case in CASES}
    names = dict.fromkeys(
        name for name in args.cases if name not in args.skip
    )  # in the given order
    cases = [by_name[name] for name in names]
    out_dir = args.out_dir or DEFAULT_ROOT / datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    out_dir.mkdir(parents=True, exist_ok=True)
    report = {
        "machine": machine(),
        "settings": {
            "cases": [c.name for c in cases],
            "reps": args.reps,
            "quick": args.quick,
            "threads": args.threads,
        },
        "started": datetime.now().isoformat(timespec="seconds"),
        "cases": [],
    }
    print(machine_line(report["machine"]), flush=True)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="handgrad-bench-") as tmp:
        for case in cases:
            print(f"[{case.name}] {case.title} ...", flush=True)
            result = run_case(case, args, Path(tmp) / case.name)
            report["cases"].append(result)
            print(f"[{case.name}] {summary_line(case, result)}", flush=True)
    report["total_s"] = round(time.perf_counter() - start, 1)
    report["machine"]["load_avg_end"] = list(os.getloadavg())
    markdown = render_markdown(report)
    (out_dir / "benchmark.json").write_text(json.dumps(report, indent=2) + "\n")
    (out_dir / "benchmark.md").write_text(markdown)
    print("\n" + markdown)
    print(f"wrote {out_dir / 'benchmark.json'} and {out_dir / 'benchmark.md'}")
    if args.docs and not args.quick:
        update_docs(report, DOCS_PAGE)
        print(f"updated the table in {DOCS_PAGE}")
    return 1 if any("error" in case for case in report["cases"]) else 0


def run_case(case: Case, args: argparse.Namespace, work: Path) -> dict:
    """Every run of `case`, as its kind runs it; or `error` where a measurement failed."""
    result = {"name": case.name, "title": case.title, "kind": case.kind.name}
    overrides = case.run_overrides(args.quick)
    try:
        return {**result, "overrides": overrides, **case.kind.run(case, overrides, args, work)}
    except BenchmarkError as exc:
        return {**result, "error": str(exc)}


def summary_line(case: Case, result: dict) -> str:
    if "error" in result:
        return f"FAILED: {result['error']}"
    if "skipped" in result:
        return f"skipped: {result['skipped']}"
    return case.kind.summary(result)
