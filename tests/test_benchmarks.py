"""`python -m benchmarks` on tiny sizes (`--quick`): the files it writes and their tables.

No timing assertions: the numbers of a smoke run on a shared machine mean nothing.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from benchmarks.runner import CASE_NAMES, TABLE_COLUMNS, best_within, parse_args, render_markdown
from helpers.runs import ROOT

HEADER = "| " + " | ".join(TABLE_COLUMNS) + " |"


def run_benchmark(tmp_path, *args: str, timeout: float = 300):
    out = tmp_path / "bench"
    args = ("--quick", "--out-dir", str(out), *args)
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    report = json.loads((out / "benchmark.json").read_text())
    markdown = (out / "benchmark.md").read_text()
    return result, report, markdown


def check_row(markdown: str, case: dict) -> None:
    row = next(line for line in markdown.splitlines() if line.startswith(f"| {case['name']} |"))
    assert len(row.strip("|").split("|")) == len(TABLE_COLUMNS)


def test_quick_benchmark_writes_json_and_markdown(tmp_path):
    result, report, markdown = run_benchmark(tmp_path, "--cases", "linreg", "mlp_hand")

    assert report["settings"] == {
        "cases": ["linreg", "mlp_hand"],
        "reps": 1,
        "quick": True,
        "threads": None,
    }
    machine = report["machine"]
    assert {"cpu", "cores", "torch", "torch_threads", "lightning"} <= machine.keys()
    linreg, mlp = report["cases"]
    assert linreg["kind"] == "plain" and linreg["unit"] == "steps/s"
    assert linreg["sides"] == ["project", "plain"]
    assert linreg["runs"]["project"][0]["steps"] == 20  # --quick: 2 epochs of 10 full batches
    assert linreg["runs"]["plain"][0]["steps"] == 20
    assert mlp["kind"] == "hand" and mlp["unit"] == "ms/step"
    assert mlp["sides"] == ["hand", "autograd"]
    for case in (linreg, mlp):
        assert case["ratio"] > 0
        assert all(mb > 0 for mb in case["peak_rss_mb"].values())
        check_row(markdown, case)
    assert HEADER in markdown
    assert HEADER in result.stdout  # the table is printed too
    assert machine["cpu"] in markdown


@pytest.mark.slow
def test_quick_benchmark_every_case(tmp_path):
    _, report, markdown = run_benchmark(tmp_path, timeout=900)

    assert [case["name"] for case in report["cases"]] == list(CASE_NAMES)
    assert not [case for case in report["cases"] if "error" in case]
    for case in report["cases"]:
        if case["kind"] == "quality":
            assert list(case["ppl_within"]) == ["2", "4"]
            assert "| budget (s of training) | best val/ppl |" in markdown
        else:
            check_row(markdown, case)
    units = {case["name"]: case.get("unit") for case in report["cases"]}
    assert units["seed003"] == units["d2l"] == units["rnn"] == "tokens/s"


def test_cases_and_skip():
    assert parse_args([]).cases == list(CASE_NAMES)
    args = parse_args(["--skip", "quality", "--quick"])
    assert args.skip == ["quality"] and args.reps == 1
    with pytest.raises(SystemExit):
        parse_args(["--cases", "nope"])


def test_best_within_budget():
    points = [(10.0, 30.0), (50.0, 12.0), (70.0, 9.0), (200.0, 5.0)]
    assert best_within(points, 60) == 12.0
    assert best_within(points, 180) == 9.0
    assert best_within(points, 5) is None


def test_failed_case_is_a_row():
    report = {
        "machine": {
            "cpu": "cpu",
            "cores": 2,
            "usable_cores": 2,
            "torch": "2",
            "torch_threads": 2,
            "lightning": "2",
            "load_avg_start": [0.0],
            "load_avg_end": [0.0],
        },
        "settings": {"reps": 1, "quick": True},
        "started": "now",
        "total_s": 1.0,
        "cases": [{"name": "d2l", "title": "d2l", "kind": "plain", "error": "exited with 1"}],
    }
    markdown = render_markdown(report)
    assert "| d2l | FAILED | exited with 1 |" in markdown
