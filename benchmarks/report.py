"""The machine a benchmark ran on, and `benchmark.md`: the legend, one table row a case (its
kind's, or why it failed or was skipped) and any sections its kind adds below the table."""

from __future__ import annotations

import os
import platform
from importlib.metadata import version
from pathlib import Path

import torch

from benchmarks.kinds import KINDS

TABLE_COLUMNS = (
    "case", "measure", "project", "reference", "ratio", "target", "met",
    "peak RSS MB (project / reference)",
)  # fmt: skip


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


def render_markdown(report: dict) -> str:
    info = report["machine"]
    settings = report["settings"]
    lines = [
        "# handgrad benchmark",
        "",
        f"- machine: {machine_line(info)} (at the end {info['load_avg_end'][0]:.2f})",
        f"- {settings['reps']} repetition(s), medians; quick: {settings['quick']}; "
        f"started {report['started']}, took {report['total_s']:.0f} s",
        *(kind.legend for kind in KINDS.values()),
        "",
        "| " + " | ".join(TABLE_COLUMNS) + " |",
        "|" + "---|" * len(TABLE_COLUMNS),
    ]
    lines += ["| " + " | ".join(table_row(case)) + " |" for case in report["cases"]]
    for case in report["cases"]:
        if "error" not in case and "skipped" not in case:
            lines += KINDS[case["kind"]].sections(case)
    return "\n".join(lines) + "\n"


def table_row(case: dict) -> list[str]:
    if "error" in case:
        return [case["name"], "FAILED", case["error"][:120], "", "", "", "", ""]
    if "skipped" in case:
        return [case["name"], "skipped", case["skipped"][:160], "", "", "", "", ""]
    return KINDS[case["kind"]].row(case)
