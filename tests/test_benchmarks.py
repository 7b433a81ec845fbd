"""`python -m benchmarks` on tiny sizes (`--quick`): the files it writes and their tables, the
plain loop's losses against the project's (the same math); how each kind of case turns runs
into a row.

No timing assertions: the numbers of a smoke run on a shared machine mean nothing.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest

from benchmarks import BenchmarkError
from benchmarks.cases import CASE_NAMES, CASES
from benchmarks.d2l_trainer import fit_d2l
from benchmarks.kinds import KINDS
from benchmarks.kinds.against_d2l import d2l_spec
from benchmarks.kinds.time_to_quality import best_within, quality_result, time_to_reach
from benchmarks.report import TABLE_COLUMNS, render_markdown
from benchmarks.runner import main, parse_args
from helpers.runs import ROOT, compose_config

HEADER = "| " + " | ".join(TABLE_COLUMNS) + " |"
CASE = {case.name: case for case in CASES}


def run_benchmark(tmp_path, *args: str, timeout: float = 300):
    """`python -m benchmarks --quick ...` as a user runs it; its output and files."""
    out = tmp_path / "bench"
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--out-dir", str(out), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return result.stdout, *written_report(out)


def run_benchmark_here(tmp_path, capsys, *args: str):
    """The same, with the parent (which only starts the measuring children and writes the report)
    in this process: one interpreter start less. Its output and files."""
    out = tmp_path / "bench"
    code = main(["--quick", "--out-dir", str(out), *args])
    printed = capsys.readouterr().out
    assert code == 0, printed[-2000:]
    return printed, *written_report(out)


def written_report(out) -> tuple[dict, str]:
    return json.loads((out / "benchmark.json").read_text()), (out / "benchmark.md").read_text()


def check_row(markdown: str, case: dict) -> None:
    row = next(line for line in markdown.splitlines() if line.startswith(f"| {case['name']} |"))
    assert len(row.strip("|").split("|")) == len(TABLE_COLUMNS)


def test_quick_benchmark_writes_json_and_markdown(tmp_path, capsys):
    """One case of one kind (the slow test below runs every case)."""
    printed, report, markdown = run_benchmark_here(tmp_path, capsys, "--cases", "linreg")

    assert report["settings"] == {"cases": ["linreg"], "reps": 1, "quick": True, "threads": None}
    machine = report["machine"]
    assert {"cpu", "cores", "torch", "torch_threads", "lightning"} <= machine.keys()
    (linreg,) = report["cases"]
    assert linreg["kind"] == "plain" and linreg["unit"] == "steps/s"
    assert linreg["sides"] == ["project", "plain"]
    project, plain = linreg["runs"]["project"][0], linreg["runs"]["plain"][0]
    assert project["steps"] == plain["steps"] == 20  # --quick: 2 epochs of 10 full batches
    # The same math from the same seed: the same losses, to float32 round-off.
    assert plain["train_loss"] == pytest.approx(project["metrics"]["last/train/loss"], rel=1e-5)
    assert plain["val_loss"] == pytest.approx(project["metrics"]["last/val/loss"], rel=1e-5)
    assert plain["val_loss"] < plain["train_loss"]  # it trained: after the epoch, below its mean
    assert linreg["ratio"] > 0
    assert all(mb > 0 for mb in linreg["peak_rss_mb"].values())
    check_row(markdown, linreg)
    assert HEADER in markdown
    assert HEADER in printed  # the table is printed too
    assert machine["cpu"] in markdown


@pytest.mark.slow
def test_quick_benchmark_every_case(tmp_path):
    _, report, markdown = run_benchmark(tmp_path, timeout=2400)  # three cold compiles

    assert [case["name"] for case in report["cases"]] == list(CASE_NAMES)
    assert not [case for case in report["cases"] if "error" in case]
    cases = {case["name"]: case for case in report["cases"]}
    for case in cases.values():
        check_row(markdown, case)
        for plain in case.get("runs", {}).get("plain", []):  # each loop says how far it trained
            assert plain["train_loss"] > 0 and ("val_loss" in plain or "val_ppl" in plain)
    assert cases["seed003"]["unit"] == cases["d2l"]["unit"] == cases["rnn"]["unit"] == "tokens/s"

    quality = cases["quality"]
    assert list(quality["ppl_within"]) == ["2", "4", "6"]  # 60, 120, 180 s scaled by 1/30
    assert "| budget (s of training) | best val/ppl |" in markdown
    assert "| quality | best val/ppl within 4 / 6 s |" in markdown
    assert "<= 3.8 within 4 s or <= 3.6 within 6 s" in markdown
    within = quality["ppl_within"]  # the verdict is the table's numbers against the targets
    met = any((within[f"{seconds:g}"] or math.inf) <= ppl for seconds, ppl in quality["targets"])
    assert quality["target_met"] is met

    d2l = cases["d2l_trainer"]  # runs where d2l.torch imports, else says why not
    if "skipped" in d2l:
        assert d2l["skipped"].startswith("d2l.torch does not import")
    else:
        assert d2l["sides"] == ["project", "d2l"] and d2l["unit"] == "fit s"
        their = d2l["runs"]["d2l"][0]
        assert their["steps"] == d2l["runs"]["project"][0]["steps"] == 10  # 1 epoch, 1024 x 32
        assert 0 < their["plot_s"] < their["fit_s"]
        assert "val ppl" in d2l["notes"]["project"] and "d2l plots" in d2l["notes"]["d2l"]

    for name in ("seed003_compile", "d2l_compile", "rnn_compile"):
        case = cases[name]
        assert case["sides"] == ["compiled", "eager"] and case["unit"] == "fit s"
        assert case["notes"]["compiled"].startswith("compile ")  # time/compile_s, cold
        assert case["target"] in {f"the default ({d}) is the faster" for d in ("compiled", "eager")}


def test_every_kind_has_a_case_and_a_legend_line():
    """Each case's kind is one of KINDS (the report finds it by its name), each kind is used, and
    each says above the table what its rows measure."""
    assert {case.kind.name for case in CASES} == set(KINDS)
    assert all(KINDS[case.kind.name] is case.kind for case in CASES)
    markdown = render_markdown(machine_report([]))
    assert all(f"{kind.legend}\n" in markdown for kind in KINDS.values())


def test_cases_and_skip():
    assert parse_args([]).cases == list(CASE_NAMES)
    args = parse_args(["--skip", "quality", "--quick"])
    assert args.skip == ["quality"] and args.reps == 1
    with pytest.raises(SystemExit):
        parse_args(["--cases", "nope"])


@pytest.mark.corpus
def test_d2l_row_is_skipped_with_its_reason_where_d2l_does_not_import(
    tmp_path, capsys, monkeypatch
):
    broken = tmp_path / "broken" / "d2l"
    broken.mkdir(parents=True)
    (broken / "__init__.py").write_text("raise ImportError('no d2l here')\n")
    path = os.pathsep.join([str(broken.parent), os.environ.get("PYTHONPATH", "")])
    monkeypatch.setenv("PYTHONPATH", path)  # the measuring children's
    _, report, markdown = run_benchmark_here(tmp_path, capsys, "--cases", "d2l_trainer")

    (case,) = report["cases"]
    assert case["skipped"] == "d2l.torch does not import (ImportError: no d2l here)"
    assert "| d2l_trainer | skipped | d2l.torch does not import (ImportError: no d2l here) |" in (
        markdown
    )
    assert "runs" not in case  # no project run once d2l cannot run


def test_d2l_spec_is_the_book_recipe(tmp_path):
    spec = d2l_spec(compose_config(["experiment=d2l_rnn_scratch"], tmp_path))
    assert spec["corpus"].endswith("timemachine.txt")
    assert {k: v for k, v in spec.items() if k != "corpus"} == {
        "batch_size": 1024,
        "num_steps": 32,
        "hidden_size": 32,
        "lr": 1.0,
        "clip": 1.0,
        "epochs": 100,
        "seed": 0,
    }
    with pytest.raises(BenchmarkError, match="model.activation=relu .d2l: tanh."):
        d2l_spec(compose_config(["experiment=seed003_char_rnn"], tmp_path / "seed003"))


def test_d2l_run_skips_another_text(tmp_path):
    corpus = tmp_path / "other.txt"
    corpus.write_text("not the time machine")
    result = fit_d2l({"corpus": str(corpus)}, tmp_path)
    assert result["skipped"].startswith(f"{corpus} is not d2l's timemachine.txt (sha1 ")


def test_best_within_budget_and_time_to_reach():
    points = [(10.0, 30.0), (50.0, 12.0), (70.0, 9.0), (200.0, 5.0)]
    assert best_within(points, 60) == 12.0
    assert best_within(points, 180) == 9.0
    assert best_within(points, 5) is None
    assert time_to_reach(points, 10.0) == 70.0
    assert time_to_reach(points, 4.0) is None


@pytest.mark.parametrize(
    ("points", "met", "reach_s"),
    [
        ([[50.0, 4.5], [110.0, 3.79], [170.0, 3.7]], True, 110.0),  # <= 3.8 within 120 s
        ([[50.0, 4.5], [130.0, 3.79], [170.0, 3.59]], True, 130.0),  # <= 3.6 within 180 s
        ([[50.0, 4.5], [130.0, 3.79], [170.0, 3.7]], False, 130.0),
        ([[100.0, 4.1]], False, None),
    ],
)
def test_quality_targets(points, met, reach_s):
    result = quality_result({"val_ppl_points": points}, scale=1.0)
    assert list(result["ppl_within"]) == ["60", "120", "180"]
    assert result["target_met"] is met
    assert result["reach_s"] == reach_s


def runs(seconds: list[float], **extra) -> list[dict]:
    return [{"fit_s": s, "steps": 10, "peak_rss_mb": 100.0, **extra} for s in seconds]


@pytest.mark.parametrize(("project_ppl", "met"), [(7.3, True), (7.5, False)])
def test_trainer_row_needs_the_speed_and_the_same_ppl(tmp_path, project_ppl, met):
    cfg = compose_config(["experiment=d2l_rnn_scratch"], tmp_path)
    d2l = runs([30.0, 33.0, 36.0], plot_s=1.5, val_ppl=7.2, d2l_val_ppl=7.4)
    project = runs([20.0, 21.0, 22.0], metrics={"last/val/ppl": project_ppl})
    case = CASE["d2l_trainer"]
    result = case.kind.compare(case, cfg, {"d2l": d2l, "project": project})
    assert result["sides"] == ["project", "d2l"]
    assert result["ratio"] == pytest.approx(33.0 / 21.0)
    assert result["target_met"] is met
    assert result["notes"]["d2l"] == "val ppl 7.2, d2l plots 7.4, plotting 5% of its fit"


@pytest.mark.parametrize(
    ("name", "seconds", "target", "met"),
    [
        ("rnn_hand", {"hand": 12.0, "autograd": 10.0}, "<= 1.5x", True),  # step time: lower
        ("rnn_hand", {"hand": 16.0, "autograd": 10.0}, "<= 1.5x", False),
        ("linreg", {"project": 30.0, "plain": 10.0}, ">= 0.3x", True),  # throughput: higher
        ("linreg", {"project": 40.0, "plain": 10.0}, ">= 0.3x", False),
        ("mlp_hand", {"hand": 16.0, "autograd": 10.0}, "-", None),  # no target
    ],
)
def test_plain_and_hand_rows_hold_the_ratio_to_its_bound(tmp_path, name, seconds, target, met):
    case = CASE[name]
    cfg = compose_config(list(case.overrides), tmp_path)
    result = case.kind.compare(case, cfg, {side: runs([s]) for side, s in seconds.items()})
    measured, reference = result["sides"]
    assert result["ratio"] == pytest.approx(
        result["median"][measured] / result["median"][reference]
    )
    assert (result["target"], result["target_met"]) == (target, met)


def test_compile_row_reports_cold_and_warm_compile_seconds(tmp_path):
    cfg = compose_config(["experiment=seed003_char_rnn"], tmp_path)
    compile_s = (40.0, 5.0, 4.0)  # the first run's cache is cold
    compiled = [
        {**run, "metrics": {"last/time/compile_s": s}}
        for run, s in zip(runs([50.0, 12.0, 11.0]), compile_s, strict=True)
    ]
    case = CASE["seed003_compile"]
    result = case.kind.compare(case, cfg, {"compiled": compiled, "eager": runs([9.0] * 3)})
    assert result["ratio"] == pytest.approx(12.0 / 9.0)
    assert result["notes"]["compiled"] == "compile 40 s cold, warm 4.5 s"
    default = "compiled" if cfg.model.compile else "eager"
    assert result["target"] == f"the default ({default}) is the faster"
    assert result["target_met"] is (default == "eager")  # eager: 9 s, compiled: 12 s


def machine_report(cases: list[dict]) -> dict:
    return {
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
        "cases": cases,
    }


def test_failed_and_skipped_cases_are_rows():
    markdown = render_markdown(
        machine_report(
            [
                {"name": "d2l", "title": "d2l", "kind": "plain", "error": "exited with 1"},
                {"name": "d2l_trainer", "title": "t", "kind": "trainer", "skipped": "no d2l"},
            ]
        )
    )
    assert "| d2l | FAILED | exited with 1 |" in markdown
    assert "| d2l_trainer | skipped | no d2l |" in markdown


def test_quality_row_and_section():
    run = {"val_ppl_points": [[50.0, 4.7], [115.0, 3.9], [175.0, 3.7]], "epochs": 14}
    run |= {"steps": 900, "fit_s": 180.0, "peak_rss_mb": 600.0, "precision": "bf16-mixed"}
    case = {"name": "quality", "title": "time to quality", "kind": "quality"}
    markdown = render_markdown(machine_report([{**case, **quality_result(run, scale=1.0)}]))
    row = (
        "| quality | best val/ppl within 120 / 180 s | 3.9 / 3.7 | - | - "
        "| <= 3.8 within 120 s or <= 3.6 within 180 s | not met | 600 / - |"
    )
    assert row in markdown
    assert "| 60 | 4.7 |" in markdown and "| 180 | 3.7 |" in markdown
    assert "val/ppl 4 reached after 115 s; 14 epochs, 900 steps in 180 s of fit in bf16-mixed" in (
        markdown
    )
