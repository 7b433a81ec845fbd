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
from benchmarks.cells import fmt
from benchmarks.d2l_trainer import fit_d2l
from benchmarks.kinds import KINDS
from benchmarks.kinds.against_d2l import d2l_spec
from benchmarks.kinds.against_plain import max_time_seconds, plain_spec
from benchmarks.kinds.time_to_quality import best_within, quality_result, time_to_reach
from benchmarks.plain_loops import AWD_KEYS, GPT_KEYS
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
        plain_runs = case.get("runs", {}).get("plain", [])  # a quality case has one run a side
        for plain in [plain_runs] if isinstance(plain_runs, dict) else plain_runs:
            # each loop says how far it trained
            assert plain["train_loss"] > 0 and ("val_loss" in plain or "val_ppl" in plain)
    assert cases["seed003"]["unit"] == cases["d2l"]["unit"] == cases["rnn"]["unit"] == "tokens/s"

    check_new_cases(cases, markdown)

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


def check_new_cases(cases: dict, markdown: str) -> None:
    """The rows of issues 26 and 21 in a --quick report: what each case ran and how it reads."""
    quality = cases["quality"]  # model=rnn against its plain loop
    assert quality["kind"] == "quality_plain" and quality["sides"] == ["project", "plain"]
    for side in ("project", "plain"):
        assert list(quality["ppl_within"][side]) == ["2", "4", "6"]  # 60, 120, 180 s / 30
        assert quality["runs"][side]["precision"] == quality["runs"]["project"]["precision"]
        assert quality["tokens_per_s"][side] > 0
    assert quality["runs"]["plain"]["val_ppl_points"]  # (seconds, val ppl) per validation
    assert quality["target"] == "<= 3.6 within 6 s, <= plain's within 6 s, tokens/s >= 0.9x"
    within = quality["ppl_within"]  # the verdict is the table's numbers against the targets
    best = {side: within[side]["6"] or math.inf for side in within}
    ratio = quality["tokens_per_s"]["project"] / quality["tokens_per_s"]["plain"]
    met = best["project"] <= min(best["plain"], 3.6) and ratio >= 0.9
    assert quality["target_met"] is met
    assert "| budget (s of training) | project: best val/ppl | plain: best val/ppl |" in markdown
    assert "| quality | best val/ppl within 2 / 4 / 6 s; tokens/s |" in markdown

    old = cases["quality_dropout_only"]  # the recipe before AWD-LSTM, the project alone
    assert old["kind"] == "quality" and list(old["ppl_within"]) == ["2", "4", "6"]
    assert old["target_met"] is None and "| quality_dropout_only | best val/ppl within" in markdown

    gpt = cases["gpt_quality"]  # model=gpt against the plain nanoGPT loop
    assert gpt["kind"] == "quality_plain" and gpt["target"] == "<= plain's within 6 s"
    assert gpt["runs"]["plain"]["val_ppl_points"]
    for name in ("gpt_hand", "gpt_hand_bf16"):
        assert cases[name]["sides"] == ["hand", "autograd"] and cases[name]["target"] == "<= 1.3x"
    assert cases["gpt_hand_bf16"]["overrides"][0] == "device=cpu_bf16"
    for name in ("gpt_memory", "gpt_memory_bf16"):
        case = cases[name]
        assert case["unit"] == "step peak MB" and case["target"] == "<= 1.2x"
        for side in ("hand", "autograd"):
            (run,) = case["runs"][side]
            assert run["steps"] == 3  # 2 warm-up steps, then the measured one
            assert 0 < run["step_peak_mb"] < run["step_peak_rss_mb"]
        check_row(markdown, case)


NEW_CASES = (
    "quality", "quality_dropout_only", "gpt_quality",
    "gpt_hand", "gpt_hand_bf16", "gpt_memory", "gpt_memory_bf16",
)  # fmt: skip


@pytest.mark.slow
@pytest.mark.corpus
def test_quick_benchmark_new_cases(tmp_path):
    """The cases of issues 26 and 21 alone, through `python -m benchmarks --quick --cases`."""
    _, report, markdown = run_benchmark(tmp_path, "--cases", *NEW_CASES, timeout=1800)
    assert not [case for case in report["cases"] if "error" in case]
    cases = {case["name"]: case for case in report["cases"]}
    assert list(cases) == list(NEW_CASES)  # in the order --cases gives them
    for case in cases.values():
        check_row(markdown, case)
    check_new_cases(cases, markdown)


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
    result = quality_result({"val_ppl_points": points}, 1.0, ((120.0, 3.8), (180.0, 3.6)))
    assert list(result["ppl_within"]) == ["60", "120", "180"]
    assert result["target_met"] is met
    assert result["reach_s"] == reach_s
    assert quality_result({"val_ppl_points": points}, scale=1.0)["target_met"] is None  # none


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
    result = quality_result(run, 1.0, ((120.0, 3.8), (180.0, 3.6)))
    markdown = render_markdown(machine_report([{**case, **result}]))
    row = (
        "| quality | best val/ppl within 120 / 180 s | 3.9 / 3.7 | - | - "
        "| <= 3.8 within 120 s or <= 3.6 within 180 s | not met | 600 / - |"
    )
    assert row in markdown
    assert "| 60 | 4.7 |" in markdown and "| 180 | 3.7 |" in markdown
    assert "val/ppl 4 reached after 115 s; 14 epochs, 900 steps in 180 s of fit in bf16-mixed" in (
        markdown
    )


def quality_plain_runs(project_points, plain_points, project_s=180.0, plain_s=180.0) -> dict:
    """A project run and a plain run as the quality_plain kind gets them from its children."""
    common = {"epochs": 12, "steps": 1000, "peak_rss_mb": 500.0, "precision": "bf16-mixed"}
    return {
        "project": {
            **common,
            "fit_s": project_s,
            "val_ppl_points": project_points,
            "metrics": {"last/perf/tokens_per_s": 12_345.0},
        },
        "plain": {**common, "fit_s": plain_s, "val_ppl_points": plain_points},
    }


@pytest.mark.parametrize(
    ("project", "plain", "project_s", "met"),
    [
        ([[50.0, 4.5], [170.0, 3.59]], [[55.0, 4.4], [175.0, 3.65]], 180.0, True),
        ([[50.0, 4.5], [170.0, 3.59]], [[55.0, 4.4], [175.0, 3.55]], 180.0, False),  # plain's lower
        ([[50.0, 4.5], [170.0, 3.61]], [[55.0, 4.4], [175.0, 3.65]], 180.0, False),  # above 3.6
        (
            [[50.0, 4.5], [170.0, 3.59]],
            [[55.0, 4.4], [175.0, 3.65]],
            250.0,
            False,
        ),  # 0.72x tokens/s
        ([[200.0, 3.0]], [[55.0, 4.4]], 180.0, False),  # no validation within its budget
    ],
)
def test_quality_plain_row_against_the_plain_loop(tmp_path, project, plain, project_s, met):
    case = CASE["quality"]  # model=rnn against its plain loop: <= 3.6 and plain's, >= 0.9x
    cfg = compose_config(list(case.overrides), tmp_path)
    runs = quality_plain_runs(project, plain, project_s=project_s)
    result = {"name": case.name, "title": "rnn vs plain", "kind": case.kind.name}
    result |= case.kind.compare(case, cfg, runs, scale=1.0)
    assert result["target_met"] is met
    tokens = 1000 * 32 * 64  # steps x batch_size x num_steps
    assert result["tokens_per_s"] == {"project": tokens / project_s, "plain": tokens / 180.0}
    assert result["ratio"] == pytest.approx(180.0 / project_s)
    assert result["target"] == "<= 3.6 within 180 s, <= plain's within 180 s, tokens/s >= 0.9x"
    markdown = render_markdown(machine_report([result]))
    check_row(markdown, result)
    assert "| quality | best val/ppl within 60 / 120 / 180 s; tokens/s |" in markdown
    assert f"| 180 | {fmt(best_within(project, 180))} | {fmt(best_within(plain, 180))} |" in (
        markdown
    )
    assert "(perf/tokens_per_s 12,345, training steps only)" in markdown
    assert "- plain: val/ppl 4 " in markdown and "12 epochs, 1000 steps in 180 s" in markdown


def test_gpt_quality_has_no_target_but_the_plain_loops(tmp_path):
    case = CASE["gpt_quality"]
    cfg = compose_config(list(case.overrides), tmp_path)
    runs = quality_plain_runs([[90.0, 4.3], [170.0, 4.1]], [[95.0, 4.4], [175.0, 4.2]], 400.0)
    result = case.kind.compare(case, cfg, runs, scale=1.0)
    assert (result["target"], result["target_met"]) == ("<= plain's within 180 s", True)


@pytest.mark.parametrize(("hand_mb", "met"), [(110.0, True), (130.0, False)])
def test_memory_row_holds_hand_to_1_2x_autograd(tmp_path, hand_mb, met):
    case = CASE["gpt_memory"]
    cfg = compose_config(list(case.overrides), tmp_path)

    def memory_runs(peaks):
        return [{**run, "step_peak_mb": mb, "step_start_rss_mb": 520.0} for run, mb in peaks]

    runs = {
        "hand": memory_runs(zip(runs_of(3), [hand_mb, 90.0, 200.0], strict=True)),
        "autograd": memory_runs(zip(runs_of(3), [100.0, 100.0, 100.0], strict=True)),
    }
    result = case.kind.compare(case, cfg, runs)
    assert result["sides"] == ["hand", "autograd"] and result["unit"] == "step peak MB"
    assert result["ratio"] == pytest.approx(hand_mb / 100.0)  # medians
    assert (result["target"], result["target_met"]) == ("<= 1.2x", met)
    assert result["notes"] == {"hand": "from 520 MB RSS", "autograd": "from 520 MB RSS"}


def runs_of(count: int) -> list[dict]:
    return runs([10.0] * count)


def test_new_cases_run_the_recipes_they_name():
    """Issue 21's GPT rows at model=gpt's default size, float32 and bf16; issue 26's rows on the
    recipes as typed (device=auto: bf16 where the CPU has it)."""
    overrides = {name: CASE[name].run_overrides(quick=False) for name in NEW_CASES}
    assert overrides["gpt_hand"][:2] == ["device=cpu", "model=gpt"]
    assert overrides["gpt_hand_bf16"][:2] == ["device=cpu_bf16", "model=gpt"]
    assert overrides["gpt_memory"] == ["device=cpu", "model=gpt"]
    assert overrides["gpt_memory_bf16"] == ["device=cpu_bf16", "model=gpt"]
    assert overrides["quality"] == ["device=auto", "model=rnn"]
    assert overrides["quality_dropout_only"] == ["device=auto", "experiment=rnn_dropout_only"]
    assert overrides["gpt_quality"] == ["device=auto", "model=gpt"]
    assert CASE["quality"].quality_targets == ((180.0, 3.6),) and CASE["quality"].target == 0.9


AWD = [
    "model.embedding_dim=64", "model.embedding_dropout=0.1", "model.weight_drop=0.3",
    "model.dropout_kind=locked",
]  # fmt: skip


def test_plain_spec_carries_the_awd_recipe_and_the_trainers_part(tmp_path):
    cfg = compose_config(["device=cpu_bf16", "model=rnn", *AWD], tmp_path)
    spec = plain_spec(cfg)
    assert spec["loop"] == "char_rnn"
    assert {k: spec[k] for k in AWD_KEYS} == {
        "embedding_dim": 64, "embedding_dropout": 0.1, "weight_drop": 0.3,
        "dropout_kind": "locked",
    }  # fmt: skip
    assert spec["precision"] == "bf16-mixed"
    assert spec["scheduler"] == {
        "name": "ReduceLROnPlateau",
        "kwargs": {"mode": "min", "factor": 0.3, "patience": 0},
        "monitor": "val/ppl",
    }
    assert spec["early_stopping"] == {"patience": 4, "min_delta": 0.0}
    assert spec["max_time_s"] == 180.0 and spec["clip"] == 1.0 and spec["val_every"] == 1
    assert (spec["optimizer"], spec["optimizer_kwargs"]["lr"]) == ("Adam", cfg.optimizer.lr)

    old = plain_spec(compose_config(["device=cpu", "experiment=rnn_dropout_only"], tmp_path / "o"))
    assert {k: old[k] for k in AWD_KEYS} == AWD_KEYS  # all off: the loop is PlainFusedRNN
    assert old["precision"] == "32-true"


def test_plain_spec_of_the_gpt_recipes(tmp_path):
    spec = plain_spec(compose_config(["device=cpu", "model=gpt"], tmp_path))
    assert spec["loop"] == "gpt"
    assert {k: spec[k] for k in GPT_KEYS} == {
        "n_layer": 4, "n_head": 4, "n_embd": 128, "dropout": 0.1, "bias": True,
        "tie_weights": False, "gelu": "tanh",
    }  # fmt: skip
    assert {k: spec["data"][k] for k in ("num_steps", "batch_size", "sampling", "split")} == {
        "num_steps": 64, "batch_size": 32, "sampling": "random", "split": "holdout",
    }  # fmt: skip
    assert spec["scheduler"]["name"] == "ReduceLROnPlateau" and spec["max_time_s"] == 180.0

    nano = plain_spec(compose_config(["experiment=nanogpt_char_cpu"], tmp_path / "nano"))
    assert (nano["optimizer"], nano["decay"]) == ("AdamW", "matrices")
    assert nano["scheduler"] == {
        "name": "WarmupCosine",
        "kwargs": {"warmup_steps": 100, "total_steps": 2000, "min_lr_ratio": 0.1},
        "monitor": None,
    }
    assert nano["early_stopping"] is None and nano["max_time_s"] is None
    assert nano["epochs"] == -1 and nano["data"]["tokenizer"] == "chars"


@pytest.mark.parametrize(
    ("max_time", "seconds"),
    [("00:00:03:00", 180.0), ("01:02:03:04", 93784.0), ({"seconds": 6}, 6.0), (None, None)],
)
def test_max_time_in_seconds(max_time, seconds):
    assert max_time_seconds(max_time) == seconds
