"""Benchmark: the project's training path against plain PyTorch loops of the same math, against
d2l's own Trainer, with and without compilation, and its time to quality.

`python -m benchmarks` runs every measurement in its own subprocess (so `ru_maxrss` is that
run's peak memory and no run inherits another's warm caches or threads), repetitions interleaved
(one side, the other, one side, ...) so both sides see the same machine load, and reports
medians. Kinds of case:

- `plain`: `handgrad.run.task.train(cfg)` on a config composed as `scripts/train.py` composes it,
  against a plain loop with the same model, loss, optimizer, batches and validation cadence.
  Throughput is optimizer steps (or tokens = steps x batch_size x num_steps) over the seconds
  inside `trainer.fit` (`time/fit_s` in the run's metrics); the plain loop's clock covers its
  epochs (training and validation), not data loading or set-up. Ratio = project / plain.
- `hand`: seconds per optimizer step with `model.backward=hand` against `model.backward=autograd`,
  both through the project. Ratio = hand / autograd.
- `trainer`: the project's whole `trainer.fit` seconds against d2l 1.0.3's `d2l.Trainer.fit`
  fitting the book's own model on the same text (`benchmarks/d2l_trainer.py`), with each side's
  final validation perplexity. Ratio = d2l seconds / project seconds. Skipped, with the reason,
  where d2l.torch does not import.
- `compile`: the project's whole `trainer.fit` seconds with `model.compile=true` (compilation
  included) against `model.compile=false`, and the compile seconds the run logs
  (`time/compile_s`): cold in the first run (an empty compile cache of the case's own), warm in
  the later ones. Ratio = compiled / eager.
- `quality`: the best held-out val/ppl of a project run within each time budget, and the seconds
  to reach a perplexity, read from the wall times of its TensorBoard events (training capped by
  `trainer.max_time`).

Results go to `<out-dir>/benchmark.json` (every run's numbers and the machine) and
`<out-dir>/benchmark.md` (the tables printed at the end).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from importlib.metadata import version
from pathlib import Path
from urllib.parse import urlparse

import torch

from benchmarks.d2l_trainer import fit_d2l
from benchmarks.plain_loops import PLAIN_LOOPS
from handgrad.run.compose import compose_run

ROOT = Path(__file__).resolve().parents[1]  # the checkout: conf/ and this folder
CONF = ROOT / "conf"
DEFAULT_ROOT = Path("outputs") / "benchmark"
QUALITY_BUDGETS = (60.0, 120.0, 180.0)  # seconds of training
QUALITY_TARGETS = ((120.0, 3.8), (180.0, 3.6))  # met: best val/ppl <= ppl within s, for either
QUALITY_REACH = 4.0  # the quality case also reports the seconds to reach this val/ppl
QUICK_TIME_SCALE = 1 / 30  # --quick: the quality budgets become 2, 4 and 6 s
SAME_PPL = 1.02  # trainer cases: "the same val ppl" = the project's at most 2% above d2l's
COMPILE_METRIC = "time/compile_s"  # what a model.compile=true run logs (metrics.json: last/...)


@dataclass(frozen=True)
class Case:
    """One row of the table. `overrides` compose the project's config (after `device=<device>`:
    the CPU in float32, as the plain loops and d2l run; `auto` is the recipe's own default, bf16
    mixed precision for model=rnn on a CPU with native bf16); `full` / `quick` are added for the
    real benchmark / for `--quick` (a few steps)."""

    name: str
    title: str
    kind: str  # plain | hand | trainer | compile | quality (see the module docstring)
    overrides: tuple[str, ...]
    full: tuple[str, ...] = ()
    quick: tuple[str, ...] = ()
    target: float | None = None  # plain, trainer: ratio >= target; hand: ratio <= target
    device: str = "cpu"


CASES = (
    Case(
        "linreg",
        "linear regression, seed 004 (project defaults, logging on)",
        "plain",
        ("experiment=seed004_linreg",),
        quick=("trainer.max_epochs=2", "data.passes_per_epoch=10"),
        target=0.3,
    ),
    Case(
        "seed003",
        "char-RNN seed 003 recipe (scratch relu 256, 32 x 35, sequential)",
        "plain",
        ("experiment=seed003_char_rnn",),
        full=("trainer.max_epochs=100",),  # of its 1000: validation every 10, as in the recipe
        quick=("trainer.max_epochs=1",),
        target=1.0,
    ),
    Case(
        "d2l",
        "char-RNN d2l 1.0 §9.5 recipe (scratch tanh 32, 1024 x 32)",
        "plain",
        ("experiment=d2l_rnn_scratch",),  # the whole recipe: 100 epochs
        quick=("trainer.max_epochs=1",),
        target=1.0,
    ),
    Case(
        "rnn",
        "char-RNN default model=rnn (2-layer LSTM 384, Adam, 32 x 64, sequential)",
        "plain",
        ("model=rnn",),
        full=("trainer.max_epochs=2",),
        quick=("trainer.max_epochs=1", "data.max_tokens=4000"),
    ),
    Case(
        "mlp_hand",
        "MLP seed 001: backward=hand vs autograd",
        "hand",
        ("experiment=seed001_mlp",),
        quick=("trainer.max_epochs=10",),
    ),
    Case(
        "rnn_hand",
        "scratch RNN seed 003: hand BPTT vs autograd",
        "hand",
        ("experiment=seed003_char_rnn",),
        full=("trainer.max_epochs=20",),
        quick=("trainer.max_epochs=1",),
        target=1.5,
    ),
    Case(
        "rnn_hand_d2l",
        "scratch RNN d2l 1.0 §9.5 size (tanh 32, 1024 x 32): hand BPTT vs autograd",
        "hand",
        ("experiment=d2l_rnn_scratch",),
        full=("trainer.max_epochs=20",),
        quick=("trainer.max_epochs=1",),
        target=1.5,
    ),
    Case(
        "lstm_hand",
        "default model=rnn (2-layer LSTM 384, 32 x 64): hand BPTT vs autograd",
        "hand",
        ("model=rnn", "trainer.max_time=null"),
        full=("trainer.max_epochs=1",),
        quick=("trainer.max_epochs=1", "data.max_tokens=4000"),
        target=1.5,
    ),
    Case(
        "gru_hand",
        "model=rnn model.cell=gru (2-layer GRU 384, 32 x 64): hand BPTT vs autograd",
        "hand",
        ("model=rnn", "model.cell=gru", "trainer.max_time=null"),
        full=("trainer.max_epochs=1",),
        quick=("trainer.max_epochs=1", "data.max_tokens=4000"),
        target=1.5,
    ),
    Case(
        "lstm_hand_d2l",
        "d2l 1.0 §10.1 size (LSTM 32, 1024 x 32): hand BPTT vs autograd",
        "hand",
        ("experiment=d2l_rnn", "model.cell=lstm"),
        full=("trainer.max_epochs=10",),
        quick=("trainer.max_epochs=1",),
        target=1.5,
    ),
    Case(
        "gru_hand_d2l",
        "d2l 1.0 §10.2 size (GRU 32, 1024 x 32): hand BPTT vs autograd",
        "hand",
        ("experiment=d2l_rnn", "model.cell=gru"),
        full=("trainer.max_epochs=10",),
        quick=("trainer.max_epochs=1",),
        target=1.5,
    ),
    Case(
        "d2l_trainer",
        "d2l 1.0 §9.5 recipe, 100 epochs: the project vs d2l 1.0.3's own d2l.Trainer",
        "trainer",
        ("experiment=d2l_rnn_scratch",),
        quick=("trainer.max_epochs=1",),
        target=1.5,
    ),
    Case(
        "seed003_compile",
        "seed 003 recipe, hand BPTT, 100 epochs: model.compile=true vs false",
        "compile",
        ("experiment=seed003_char_rnn", "model.backward=hand"),
        full=("trainer.max_epochs=100",),
        quick=("trainer.max_epochs=1",),
    ),
    Case(
        "d2l_compile",
        "d2l 1.0 §9.5 recipe, 100 epochs: model.compile=true vs false",
        "compile",
        ("experiment=d2l_rnn_scratch",),
        quick=("trainer.max_epochs=1",),
    ),
    Case(
        "rnn_compile",
        "default model=rnn, 1 epoch: model.compile=true vs false",
        "compile",
        ("model=rnn", "trainer.max_time=null", "trainer.max_epochs=1"),
        quick=("data.max_tokens=4000",),
    ),
    Case(
        "quality",
        "time to quality: default model=rnn (device=auto), best val/ppl within each budget",
        "quality",
        ("model=rnn",),
        quick=("data.max_tokens=4000",),
        device="auto",
    ),
)
CASE_NAMES = tuple(case.name for case in CASES)


class BenchmarkError(RuntimeError):
    """A measurement that could not be taken (its child process failed)."""


# --- the parent: choose cases, run children, report ---------------------------------------------


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
        help="cases to leave out, e.g. --skip quality (the 3-minute one)",
    )  # fmt: skip
    parser.add_argument("--reps", type=int, default=None, help="repetitions (default 3; quick 1)")
    parser.add_argument("--quick", action="store_true", help="a few steps per case (smoke test)")
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
    cases = [case for case in CASES if case.name in args.cases and case.name not in args.skip]
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
            try:
                result = run_case(case, args, Path(tmp) / case.name)
            except BenchmarkError as exc:
                result = {"name": case.name, "title": case.title, "kind": case.kind}
                result["error"] = str(exc)
            report["cases"].append(result)
            print(f"[{case.name}] {summary_line(result)}", flush=True)
    report["total_s"] = round(time.perf_counter() - start, 1)
    report["machine"]["load_avg_end"] = list(os.getloadavg())
    markdown = render_markdown(report)
    (out_dir / "benchmark.json").write_text(json.dumps(report, indent=2) + "\n")
    (out_dir / "benchmark.md").write_text(markdown)
    print("\n" + markdown)
    print(f"wrote {out_dir / 'benchmark.json'} and {out_dir / 'benchmark.md'}")
    return 1 if any("error" in case for case in report["cases"]) else 0


def machine() -> dict:
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        lines = cpuinfo.read_text().splitlines()
        names = [ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name")]
        cpu = names[0] if names else cpu
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "torch": torch.__version__,
        "lightning": version("lightning"),
        "python": platform.python_version(),
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "load_avg_start": list(os.getloadavg()),
    }


def machine_line(info: dict) -> str:
    return (
        f"{info['cpu']}, {info['usable_cores']}/{info['cores']} cores, torch {info['torch']} "
        f"({info['torch_threads']} threads), lightning {info['lightning']}, "
        f"load avg {info['load_avg_start'][0]:.2f}"
    )


def case_overrides(case: Case, quick: bool) -> list[str]:
    return [f"device={case.device}", *case.overrides, *(case.quick if quick else case.full)]


def run_case(case: Case, args: argparse.Namespace, work: Path) -> dict:
    """Every run of `case` (`args.reps` of each side, interleaved); medians and their ratio, or
    `skipped` with the reason where a side cannot run here."""
    overrides = case_overrides(case, args.quick)
    result = {"name": case.name, "title": case.title, "kind": case.kind, "overrides": overrides}
    if case.kind == "quality":
        scale = QUICK_TIME_SCALE if args.quick else 1.0
        job = {"kind": "quality", "overrides": overrides, "seconds": scale * max(QUALITY_BUDGETS)}
        return {**result, **quality_result(run_child(job, work / "run", args.threads), scale)}
    cfg = compose_run(CONF, overrides, work / "composed")
    sides = case_sides(case.kind, cfg, overrides, work)
    runs = {side: [] for side in sides}
    for rep in range(args.reps):
        for side, job in sides.items():
            run = run_child(job, work / f"{side}-{rep}", args.threads)
            if "skipped" in run:
                return {**result, "skipped": run["skipped"]}
            runs[side].append(run)
    return {**result, **compare(case, cfg, runs)}


def case_sides(kind: str, cfg, overrides: list[str], work: Path) -> dict[str, dict]:
    """The two jobs a case times, in the order each repetition runs them."""
    if kind == "plain":
        return {
            "project": {"kind": "project", "overrides": overrides},
            "plain": {"kind": "plain", "spec": plain_spec(cfg)},
        }
    if kind == "hand":
        return {
            "hand": {"kind": "project", "overrides": [*overrides, "model.backward=hand"]},
            "autograd": {"kind": "project", "overrides": [*overrides, "model.backward=autograd"]},
        }
    if kind == "trainer":  # d2l first: where it cannot run, no project run is wasted
        return {
            "d2l": {"kind": "d2l", "spec": d2l_spec(cfg)},
            "project": {"kind": "project", "overrides": overrides},
        }
    cache = {"TORCHINDUCTOR_CACHE_DIR": str(work / "compile-cache")}  # cold in the first run
    compiled = {"kind": "project", "overrides": [*overrides, "model.compile=true"], "env": cache}
    return {
        "compiled": compiled,
        "eager": {"kind": "project", "overrides": [*overrides, "model.compile=false"]},
    }


def compare(case: Case, cfg, runs: dict[str, list[dict]]) -> dict:
    """Each side's value per run, the medians, the ratio and the target (see the kinds in the
    module docstring); the table shows the measured side first, then the reference."""
    measured, reference, unit, value = measure(case.kind, cfg)
    values = {side: [value(run) for run in side_runs] for side, side_runs in runs.items()}
    medians = {side: statistics.median(v) for side, v in values.items()}
    ratio = medians[measured] / medians[reference]
    return {
        "sides": [measured, reference],
        "unit": unit,
        "runs": runs,
        "values": values,
        "median": medians,
        "peak_rss_mb": {s: max(r["peak_rss_mb"] for r in rs) for s, rs in runs.items()},
        **verdict(case, cfg, runs, medians, ratio),
    }


def measure(kind: str, cfg) -> tuple[str, str, str, Callable[[dict], float]]:
    """A kind's measured side, its reference side, the unit, and one run's value in it."""
    if kind == "plain":
        per_step = tokens_per_step(cfg)
        unit = "tokens/s" if per_step > 1 else "steps/s"
        return "project", "plain", unit, lambda run: run["steps"] * per_step / run["fit_s"]
    if kind == "hand":
        return "hand", "autograd", "ms/step", lambda run: 1000 * run["fit_s"] / run["steps"]
    if kind == "trainer":
        return "project", "d2l", "fit s", lambda run: run["fit_s"]
    return "compiled", "eager", "fit s", lambda run: run["fit_s"]


def verdict(case: Case, cfg, runs: dict, medians: dict, ratio: float) -> dict:
    """The ratio as the table shows it, the target's text, met (None: no target), and notes
    beside each side's value."""
    target = case.target
    if case.kind in ("plain", "hand"):
        if target is None:
            return {"ratio": ratio, "target": "-", "target_met": None}
        if case.kind == "plain":
            return {"ratio": ratio, "target": f">= {target:g}x", "target_met": ratio >= target}
        return {"ratio": ratio, "target": f"<= {target:g}x", "target_met": ratio <= target}
    if case.kind == "trainer":
        speedup = 1 / ratio  # d2l seconds / project seconds
        ppl, notes = trainer_perplexities(runs)
        return {
            "ratio": speedup,
            "target": f">= {target:g}x at the same val ppl (<= {SAME_PPL:g} x d2l's)",
            "target_met": speedup >= target and ppl["project"] <= SAME_PPL * ppl["d2l"],
            "notes": notes,
        }
    default = "compiled" if cfg.model.compile else "eager"
    return {
        "ratio": ratio,
        "target": f"the default ({default}) is the faster",
        "target_met": medians[default] <= min(medians.values()),
        "notes": {"compiled": compile_note(runs["compiled"])},
    }


def trainer_perplexities(runs: dict[str, list[dict]]) -> tuple[dict, dict]:
    """Median final val ppl (exp of the token-weighted mean cross-entropy) of each side, and the
    table's notes: both ppls, d2l's own printed ppl (the mean of per-batch perplexities) and the
    share of d2l's fit spent plotting."""
    ppl = {
        "project": statistics.median(r["metrics"]["last/val/ppl"] for r in runs["project"]),
        "d2l": statistics.median(r["val_ppl"] for r in runs["d2l"]),
    }
    printed = statistics.median(r["d2l_val_ppl"] for r in runs["d2l"])
    plot_share = statistics.median(r["plot_s"] / r["fit_s"] for r in runs["d2l"])
    notes = {
        "project": f"val ppl {ppl['project']:.3g}",
        "d2l": f"val ppl {ppl['d2l']:.3g}, d2l plots {printed:.3g}, "
        f"plotting {100 * plot_share:.0f}% of its fit",
    }
    return ppl, notes


def compile_note(runs: list[dict]) -> str:
    """The compile seconds the compiled runs log: the first run's (cold cache), the median of
    the later ones (warm)."""
    seconds = [r["metrics"].get(f"last/{COMPILE_METRIC}") for r in runs]
    if None in seconds:
        return f"{COMPILE_METRIC} not logged"
    warm = f", warm {statistics.median(seconds[1:]):.3g} s" if len(seconds) > 1 else ""
    return f"compile {seconds[0]:.3g} s cold{warm}"


def tokens_per_step(cfg) -> int:
    """What one optimizer step consumes: batch_size x num_steps tokens, or 1 (a step)."""
    if "num_steps" in cfg.data:
        return cfg.data.batch_size * cfg.data.num_steps
    return 1


def run_child(job: dict, work: Path, threads: int | None = None) -> dict:
    """Run `job` in a fresh `python -m benchmarks.runner <work>`; return its result.json."""
    work.mkdir(parents=True, exist_ok=True)
    (work / "job.json").write_text(json.dumps({**job, "threads": threads}))
    log = work / "log.txt"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        **job.get("env", {}),
    }
    with log.open("w") as out:
        code = subprocess.call(
            [sys.executable, "-m", "benchmarks.runner", str(work)], stdout=out, stderr=out, env=env
        )
    result = work / "result.json"
    if code != 0 or not result.is_file():
        tail = " | ".join(log.read_text().strip().splitlines()[-5:])
        raise BenchmarkError(f"{job['kind']} run exited with {code}: {tail}")
    return json.loads(result.read_text())


def summary_line(result: dict) -> str:
    if "error" in result:
        return f"FAILED: {result['error']}"
    if "skipped" in result:
        return f"skipped: {result['skipped']}"
    if result["kind"] == "quality":
        within = ", ".join(f"{b} s: {fmt(p)}" for b, p in result["ppl_within"].items())
        return f"best val/ppl within {within}; {QUALITY_REACH:g} {reach_text(result)}"
    a, b = result["sides"]
    unit = result["unit"]
    return (
        f"{a} {fmt(result['median'][a])} {unit}, {b} {fmt(result['median'][b])} {unit}, "
        f"ratio {result['ratio']:.2f}x"
    )


def reach_text(result: dict) -> str:
    seconds = result["reach_s"]
    return "not reached" if seconds is None else f"reached after {seconds:.0f} s"


def fmt(value) -> str:
    if value is None:
        return "-"
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"


TABLE_COLUMNS = (
    "case", "measure", "project", "reference", "ratio", "target", "met",
    "peak RSS MB (project / reference)",
)  # fmt: skip
MET = {None: "-", True: "met", False: "not met"}


def render_markdown(report: dict) -> str:
    info = report["machine"]
    settings = report["settings"]
    lines = [
        "# handgrad benchmark",
        "",
        f"- machine: {machine_line(info)} (at the end {info['load_avg_end'][0]:.2f})",
        f"- {settings['reps']} repetition(s), medians; quick: {settings['quick']}; "
        f"started {report['started']}, took {report['total_s']:.0f} s",
        "- plain cases: project = `train(cfg)`, throughput over `time/fit_s`; reference = a plain "
        "PyTorch loop of the same math; ratio = project / reference (higher is better)",
        "- hand cases: project = `model.backward=hand`, reference = `model.backward=autograd`, "
        "both through the project; ratio = hand / autograd step time (lower is better)",
        "- trainer cases: whole-fit seconds of the project and of d2l's own `d2l.Trainer` on the "
        "same recipe and text; ratio = d2l / project (higher is better); val ppl = exp(mean "
        "cross-entropy) on both sides, and the mean of per-batch perplexities d2l plots",
        "- compile cases: whole-fit seconds with `model.compile=true` (compiling included) and "
        f"`=false`; ratio = compiled / eager (lower is better); `{COMPILE_METRIC}` cold in the "
        "first run, warm in the later ones",
        "- quality: best val/ppl within each budget of training seconds",
        "",
        "| " + " | ".join(TABLE_COLUMNS) + " |",
        "|" + "---|" * len(TABLE_COLUMNS),
    ]
    lines += ["| " + " | ".join(table_row(case)) + " |" for case in report["cases"]]
    for case in report["cases"]:
        if case["kind"] == "quality" and "ppl_within" in case:
            lines += quality_section(case)
    return "\n".join(lines) + "\n"


def table_row(case: dict) -> list[str]:
    if "error" in case:
        return [case["name"], "FAILED", case["error"][:120], "", "", "", "", ""]
    if "skipped" in case:
        return [case["name"], "skipped", case["skipped"][:160], "", "", "", "", ""]
    if case["kind"] == "quality":
        budgets = [f"{budget:g}" for budget, _ in case["targets"]]
        within = " / ".join(fmt(case["ppl_within"][b]) for b in budgets)
        return [
            case["name"],
            f"best val/ppl within {' / '.join(budgets)} s",
            within,
            "-",
            "-",
            " or ".join(f"<= {ppl:g} within {budget:g} s" for budget, ppl in case["targets"]),
            MET[case["target_met"]],
            f"{case['peak_rss_mb']:.0f} / -",
        ]
    a, b = case["sides"]
    notes = case.get("notes", {})
    rss = case["peak_rss_mb"]
    return [
        case["name"],
        case["unit"],
        side_cell(case, a, notes.get(a)),
        side_cell(case, b, notes.get(b)),
        f"{case['ratio']:.2f}x",
        case["target"],
        MET[case["target_met"]],
        f"{rss[a]:.0f} / {rss[b]:.0f}",
    ]


def side_cell(case: dict, side: str, note: str | None) -> str:
    return f"{fmt(case['median'][side])} ({side}{', ' + note if note else ''})"


def quality_section(case: dict) -> list[str]:
    lines = [
        "",
        f"## {case['title']}",
        "",
        "| budget (s of training) | best val/ppl |",
        "|---|---|",
    ]
    lines += [f"| {budget} | {fmt(ppl)} |" for budget, ppl in case["ppl_within"].items()]
    return [
        *lines,
        "",
        f"val/ppl {QUALITY_REACH:g} {reach_text(case)}; {case['epochs']} epochs, "
        f"{case['steps']} steps in {case['fit_s']:.0f} s of fit in {case['precision']}; "
        f"peak RSS {case['peak_rss_mb']:.0f} MB",
    ]


# --- the children: one measurement each ---------------------------------------------------------


def child_main(work: Path) -> None:
    job = json.loads((work / "job.json").read_text())
    if job["threads"]:
        torch.set_num_threads(job["threads"])
    if job["kind"] == "plain":
        result = PLAIN_LOOPS[job["spec"]["loop"]](job["spec"])
    elif job["kind"] == "d2l":
        result = fit_d2l(job["spec"], work)
    elif job["kind"] == "project":
        result = run_project(job["overrides"], work / "run")
    else:
        result = run_quality(job["overrides"], job["seconds"], work / "run")
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result["torch_threads"] = torch.get_num_threads()
    (work / "result.json").write_text(json.dumps(result))


def run_project(overrides: list[str], run_dir: Path, extra_callbacks: dict | None = None) -> dict:
    """`handgrad.run.task.train` on the composed config; fit seconds and optimizer steps."""
    from omegaconf import open_dict

    from handgrad.run.task import train

    cfg = compose_run(CONF, overrides, run_dir)
    with open_dict(cfg):
        cfg.callbacks.update(extra_callbacks or {})
    train(cfg)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    last = metrics["checkpoints"]["last"]
    return {
        "fit_s": metrics["time/fit_s"],
        "steps": last["step"],
        "epochs": last["epoch"] + 1,
        "precision": str(cfg.trainer.precision),
        "metrics": {k: v for k, v in metrics.items() if isinstance(v, float)},
    }


def train_start_clock(path: str):
    """A callback that writes the wall time at `on_train_start` (when `trainer.max_time` starts
    counting) to `path`; the quality case adds it (Lightning is imported in project runs only)."""
    import lightning as L

    class TrainStartClock(L.Callback):
        def on_train_start(self, trainer, pl_module) -> None:
            Path(path).write_text(json.dumps(time.time()))

    return TrainStartClock()


def run_quality(overrides: list[str], seconds: float, run_dir: Path) -> dict:
    """One project run capped at `seconds` of training; its val/ppl points as (seconds since
    training started, value), from the wall times of the TensorBoard events."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    clock = run_dir.parent / "train_start.json"
    overrides = [*overrides, f"+trainer.max_time={{seconds:{seconds:g}}}"]
    clock_cfg = {"_target_": "benchmarks.runner.train_start_clock", "path": str(clock)}
    result = run_project(overrides, run_dir, extra_callbacks={"bench_clock": clock_cfg})
    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    events.Reload()
    start = json.loads(clock.read_text())
    result["val_ppl_points"] = [[e.wall_time - start, e.value] for e in events.Scalars("val/ppl")]
    return result


def quality_result(run: dict, scale: float) -> dict:
    """The best val/ppl within each of QUALITY_BUDGETS (times `scale`), whether QUALITY_TARGETS
    are met, and the seconds to reach QUALITY_REACH (None: not reached)."""
    points = [tuple(point) for point in run["val_ppl_points"]]
    targets = [(scale * budget, ppl) for budget, ppl in QUALITY_TARGETS]
    within = {f"{scale * b:g}": best_within(points, scale * b) for b in QUALITY_BUDGETS}
    met = any((best_within(points, budget) or math.inf) <= ppl for budget, ppl in targets)
    return {
        **run,
        "ppl_within": within,
        "targets": targets,
        "target_met": met,
        "reach_s": time_to_reach(points, QUALITY_REACH),
    }


def best_within(points: list[tuple[float, float]], seconds: float) -> float | None:
    """The lowest value among (elapsed seconds, value) points at or before `seconds`."""
    values = [value for elapsed, value in points if elapsed <= seconds]
    return min(values) if values else None


def time_to_reach(points: list[tuple[float, float]], value: float) -> float | None:
    """The elapsed seconds of the first (elapsed seconds, value) point at or below `value`."""
    return next((elapsed for elapsed, v in points if v <= value), None)


# --- plain loops: the same math written as plain PyTorch ------------------------------------------


def plain_spec(cfg) -> dict:
    """What a plain loop needs from the composed config: data, model, optimizer, epochs."""
    from omegaconf import OmegaConf

    optimizer = OmegaConf.to_container(cfg.optimizer, resolve=True)
    target = optimizer.pop("_target_")
    if not target.startswith("torch.optim.") or optimizer.pop("lr_by_param", None):
        raise BenchmarkError(f"plain loops use torch.optim with one lr, not {target}")
    optimizer.pop("_partial_", None)
    spec = {
        "optimizer": target.removeprefix("torch.optim."),
        "optimizer_kwargs": optimizer,
        "epochs": cfg.trainer.max_epochs,
        "val_every": cfg.trainer.check_val_every_n_epoch,
        "clip": cfg.model.get("clip_grad_norm"),
    }
    data, model = cfg.data, cfg.model
    if model._target_.endswith("LinearRegression"):
        plain = (data.batch_size, data.val_fraction, data.x, model.reduction, model.scale)
        if plain != (None, 0, "uniform", "mean", 1):
            raise BenchmarkError(
                "the plain linear regression loop is full-batch on uniform x, no held-out set, "
                "mean squared error"
            )
        w_true = list(data.w_true)
        facts = {"n_samples": data.n_samples, "w_true": w_true, "b_true": data.b_true}
        facts |= {"noise_std": data.noise_std, "init_std": model.init_std}
        facts |= {"data_seed": data.seed, "seed": cfg.seed}
        facts["passes"] = data.passes_per_epoch  # full-batch steps per epoch
        return {**spec, "loop": "linreg", **facts}
    if model._target_.endswith("CharRNN"):
        return {
            **spec,
            "loop": "char_rnn",
            "corpus": corpus_path(data),
            **{k: data[k] for k in ("split", "sampling", "batch_size", "num_steps")},
            **{k: data[k] for k in ("val_fraction", "max_tokens")},
            **{k: model[k] for k in ("cell", "hidden_size", "activation", "init_std")},
            **{k: model[k] for k in ("num_layers", "dropout")},
        }
    raise BenchmarkError(f"no plain loop for {model._target_}")


def corpus_path(data) -> str:
    """The text file a Time Machine data config reads: `data.path`, or the download cache's."""
    return data.path or str(Path(data.root).expanduser() / Path(urlparse(data.url).path).name)


def d2l_spec(cfg) -> dict:
    """What `d2l.Trainer` needs to train the composed recipe as d2l 1.0 §9.5 does (d2l's
    RNNLMScratch: the scratch tanh cell, N(0, 0.01^2) weights, d2l's split, shuffled windows,
    plain SGD); a recipe d2l's classes cannot express is an error."""
    data, model, optimizer = cfg.data, cfg.model, cfg.optimizer
    book = {
        "data.split": (data.split, "d2l"),
        "data.sampling": (data.sampling, "random"),
        "model.cell": (model.cell, "scratch"),
        "model.activation": (model.activation, "tanh"),
        "model.init_std": (model.init_std, 0.01),
        "optimizer": (optimizer._target_, "torch.optim.SGD"),
        "optimizer.momentum": (optimizer.get("momentum", 0), 0),
        "optimizer.weight_decay": (optimizer.get("weight_decay", 0), 0),
    }
    differ = [
        f"{key}={ours} (d2l: {theirs})" for key, (ours, theirs) in book.items() if ours != theirs
    ]
    if differ:
        raise BenchmarkError(f"d2l.Trainer cannot train this recipe: {', '.join(differ)}")
    return {
        "corpus": corpus_path(data),
        "batch_size": data.batch_size,
        "num_steps": data.num_steps,
        "hidden_size": model.hidden_size,
        "lr": optimizer.lr,
        "clip": model.clip_grad_norm or 0,
        "epochs": cfg.trainer.max_epochs,
        "seed": cfg.seed,
    }


if __name__ == "__main__":
    child_main(Path(sys.argv[1]))
