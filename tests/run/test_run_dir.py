"""The run dir when a run fails: a full disk as one line with the resume command, and a run that
failed before writing anything leaves no dir behind."""

from __future__ import annotations

import errno
import json
import os

import torch

from handgrad.run.run_dir import remove_if_unused, write_failure
from helpers.runs import HELPERS, run_script

FULL = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_a_full_disk_mid_run_is_one_line_and_the_run_resumes_once_there_is_room(tmp_path):
    result = run_script(
        "train.py",
        "trainer.max_epochs=5",
        "+callbacks.full_disk._target_=full_disk.FullDiskFrom",
        "+callbacks.full_disk.from_epoch=2",
        f"paths.root={tmp_path}",
        cwd=tmp_path,
        env={"PYTHONPATH": str(HELPERS)},
    )
    (run_dir,) = (tmp_path / "runs").glob("*/*")
    last = run_dir / "checkpoints" / "last.ckpt"
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    error = result.stderr.strip().splitlines()[-1]
    assert error == (
        f"error: cannot write the run dir {run_dir} (No space left on device); the last "
        f"checkpoint {last} (step 8) is intact; free some space, then continue with: "
        f"python scripts/train.py resume={run_dir}"
    )
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics == {"status": "failed", "error": error.removeprefix("error: ")}
    assert torch.load(last, weights_only=True)["global_step"] == 8  # the first epoch's save
    assert not list(run_dir.rglob("*.tmp"))

    resumed = run_script(
        "train.py", f"resume={run_dir}", "~callbacks.full_disk", cwd=tmp_path
    )  # the disk has room again
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["status"] == "ok" and metrics["checkpoints"]["last"]["step"] == 40


def test_only_a_failed_write_into_the_run_dir_is_a_run_dir_error(tmp_path):
    run_dir = tmp_path / "run"
    elsewhere = OSError(errno.EACCES, "Permission denied", str(tmp_path / "data.txt"))
    inside = OSError(errno.EACCES, "Permission denied", str(run_dir / "fit.png"))
    assert write_failure(elsewhere, run_dir) is None
    assert write_failure(ValueError("no disk involved"), run_dir) is None
    wrapped = RuntimeError("save failed")  # a failed write() names no file: its errno tells
    wrapped.__cause__ = FULL
    for exc, cause in ((inside, "Permission denied"), (wrapped, "No space left on device")):
        assert str(write_failure(exc, run_dir)) == (
            f"cannot write the run dir {run_dir} ({cause}); no checkpoint was saved, so start "
            "the run again once the disk has room"
        )


def make_run_dir(root, log_text: str = ""):
    run_dir = root / "runs" / "2030-01-01" / "12-00-00_linear"
    (run_dir / ".hydra").mkdir(parents=True)
    (run_dir / ".hydra" / "config.yaml").write_text("seed: 0\n")
    (run_dir / "train.log").write_text(log_text)
    return run_dir


def test_a_run_dir_holding_only_hydras_files_is_removed_up_to_the_root(tmp_path):
    run_dir = make_run_dir(tmp_path)
    remove_if_unused(run_dir, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_run_dir_with_anything_else_stays(tmp_path):
    logged = make_run_dir(tmp_path / "logged", log_text="epoch 0\n")
    resumed = make_run_dir(tmp_path / "resumed")
    (resumed / "checkpoints").mkdir()
    (resumed / "checkpoints" / "last.ckpt").write_bytes(b"earlier results")
    for run_dir in (logged, resumed):
        remove_if_unused(run_dir, run_dir.parents[2])
        assert (run_dir / ".hydra" / "config.yaml").exists()
