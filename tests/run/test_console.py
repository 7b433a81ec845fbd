"""What a run prints, read through a pipe as a CI log or `| tee` sees it: the run dir named once,
each line once, no third-party notices, one plain line per epoch, and a closing block whose
numbers are metrics.json's."""

from __future__ import annotations

import json
import logging
import re
import warnings
from pathlib import Path

import pytest

from handgrad.run.console import NOTICES, library_notices
from helpers.runs import run_script

# README's override example (section "Commands").
README_EXAMPLE = [
    "trainer.max_epochs=50",
    "data.batch_size=null",
    "model.reduction=sum",
    "optimizer.lr=0.008",
]


@pytest.fixture(scope="module")
def piped_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("console")
    # PYTHONWARNINGS as a user has it (unset), so the run itself must keep the console clean.
    result = run_script(
        "train.py", *README_EXAMPLE, f"paths.root={root}", cwd=root, env={"PYTHONWARNINGS": ""}
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = (root / "runs").glob("*/*_linear")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    return result, root, run_dir, metrics


def test_the_run_dir_is_named_once_and_every_line_is_printed_once(piped_run):
    result, root, run_dir, _ = piped_run
    output = result.stdout + result.stderr
    assert "\r" not in output, "a redrawn progress bar in a pipe"
    # Lightning's own handler prints a record as "INFO: <message>", Hydra's as "<message>".
    lines = [re.sub(r"^(INFO|WARNING|ERROR): ", "", line) for line in output.splitlines()]
    duplicated = {line for line in lines if lines.count(line) > 1}
    assert not duplicated
    named = [line for line in lines if str(run_dir.relative_to(root)) in line]
    assert lines[0] == named[0] == f"run dir: {run_dir.relative_to(root)}"  # the first line
    assert sum(line.startswith("run dir:") for line in lines) == 1
    for notice in ("Tip:", "litlogger", "LeafSpec", "weights_only", "Warning", "GPU available"):
        assert notice not in output


def test_one_plain_line_per_epoch(piped_run):
    result, *_ = piped_run
    epochs = [line for line in result.stdout.splitlines() if line.startswith("epoch ")]
    assert [int(line.split()[1].rstrip(",")) for line in epochs] == list(range(50))
    assert re.fullmatch(
        r"epoch 49, step 50, [\d.]+ s: train/loss=[\d.e+-]+ val/loss=[\d.e+-]+", epochs[-1]
    )


def closing_block(stdout: str) -> list[str]:
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("status "))
    return lines[start:]


def pairs(text: str) -> dict[str, float]:
    return {name: float(value) for name, value in re.findall(r"([\w/]+)=(\S+)", text)}


def test_the_closing_block_says_what_metrics_json_says(piped_run):
    result, root, run_dir, metrics = piped_run
    block = closing_block(result.stdout)
    status = re.fullmatch(r"status ok in ([\d.]+) s \(fit ([\d.]+) s\)", block[0])
    assert float(status[1]) == round(metrics["time/wall_s"], 1)
    assert float(status[2]) == round(metrics["time/fit_s"], 1)
    for source, heading, values in (("best", block[1], block[2]), ("last", block[3], block[4])):
        place = metrics["checkpoints"][source]
        path, step = re.fullmatch(rf"{source} checkpoint: (\S+) \(step (\d+)\)", heading).groups()
        assert (root / path, int(step)) == (Path(place["path"]), place["step"])
        shown = pairs(values)
        logged = {k for k in metrics if k.startswith((f"{source}/train/", f"{source}/val/"))}
        assert {f"{source}/{name}" for name in shown} == logged
        for name, value in shown.items():
            assert value == pytest.approx(metrics[f"{source}/{name}"], rel=1e-5)
    learned = pairs(block[5].removeprefix("learned (end of training): "))
    assert learned == pytest.approx(metrics["learned"], rel=1e-5)
    assert learned["w"] == pytest.approx(3.0, abs=0.2)  # README's example trains
    assert block[6:] == [f"tensorboard --logdir {run_dir.relative_to(root)}"]


def test_notices_are_hidden_unless_shown(caplog):
    name, prefix = NOTICES[0]
    logger = logging.getLogger(name)
    for shown in (False, True):
        caplog.clear()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with library_notices(shown=shown):
                logger.warning(f"{prefix} try our cloud")
                warnings.warn(
                    "`isinstance(treespec, LeafSpec)` is deprecated", FutureWarning, stacklevel=1
                )
        assert bool(caplog.records) == shown
        assert bool(caught) == shown
