"""Hydra multirun: one dir per job, failed jobs recorded, the summary written at the end."""

from __future__ import annotations

import csv
import json
import shutil

import pytest

from helpers.runs import run_script


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """A 2 x 2 sweep whose lr=-1 jobs fail: the result, the sweep dir and the dir it ran in."""
    tmp_path = tmp_path_factory.mktemp("sweep")
    result = run_script(
        "train.py",
        "-m",
        "model=linear",
        "optimizer=sgd,adam",
        "optimizer.lr=0.05,-1",
        "trainer.max_epochs=2",
        f"paths.root={tmp_path}",
        cwd=tmp_path,
    )
    (sweep_dir,) = (tmp_path / "multirun").iterdir()
    return result, sweep_dir, tmp_path


def test_sweep_records_failures_and_summarizes(sweep):
    result, sweep_dir, tmp_path = sweep
    assert result.returncode == 0, result.stderr[-2000:]
    job_dirs = sorted(p for p in sweep_dir.iterdir() if p.is_dir())
    assert len(job_dirs) == 4
    statuses = {}
    for job_dir in job_dirs:
        metrics = json.loads((job_dir / "metrics.json").read_text())
        statuses[job_dir.name] = metrics["status"]
        if metrics["status"] == "ok":
            assert list(job_dir.glob("events.out.tfevents.*"))
            assert (job_dir / "checkpoints" / "last.ckpt").exists()
        else:
            assert "learning rate" in metrics["error"] and "\n" not in metrics["error"]
    assert sorted(statuses.values()) == ["failed", "failed", "ok", "ok"]

    with (sweep_dir / "summary.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [row["status"] for row in rows] == ["ok", "ok", "failed", "failed"]
    assert float(rows[0]["best/val/loss"]) <= float(rows[1]["best/val/loss"])
    assert "optimizer=adam" in (sweep_dir / "summary.md").read_text()
    assert "| ok |" in result.stdout
    closing = result.stdout.strip().splitlines()[-2:]
    assert closing == [
        f"summary: {sweep_dir.relative_to(tmp_path)}/summary.md (and summary.csv)",
        f"tensorboard --logdir {sweep_dir.relative_to(tmp_path)}",
    ]


def test_summarize_cli_rereads_a_sweep_and_rejects_other_dirs(sweep, tmp_path):
    sweep_dir = shutil.copytree(sweep[1], tmp_path / "sweep")
    (sweep_dir / "summary.csv").unlink()
    result = run_script("summarize.py", str(sweep_dir), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (sweep_dir / "summary.csv").exists()
    assert result.stdout.count("| ok |") == 2 and result.stdout.count("| failed |") == 2

    result = run_script("summarize.py", str(tmp_path / "nowhere"), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().startswith("error: ")
    assert "is not a directory" in result.stderr
