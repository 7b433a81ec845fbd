"""Faults during a run: a diverging loss, non-finite weights, SIGKILL during a checkpoint save,
SIGKILL mid-run followed by resume=."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from helpers.runs import ROOT, SCRIPTS, run_script

TRAIN = "train.py"


def test_diverging_loss_stops_with_one_line_and_keeps_the_last_finite_checkpoint(tmp_path):
    result = run_script(
        TRAIN,
        "optimizer.lr=10",
        "trainer.max_epochs=50",
        "callbacks.progress_bar.refresh_rate=0",
        f"paths.root={tmp_path}",
        cwd=tmp_path,
    )
    last_line = result.stderr.strip().splitlines()[-1]
    assert result.returncode == 2, result.stderr[-3000:]
    assert last_line.startswith("error: train/loss is "), last_line
    assert "(epoch " in last_line and "optimizer.lr=10 is probably too high" in last_line
    assert "set model.clip_grad_norm" in last_line
    (run_dir,) = (tmp_path / "runs").glob("*/*")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["status"] == "failed" and metrics["error"] == last_line.removeprefix("error: ")
    kept = metrics["last_finite_checkpoint"]
    assert kept == str(run_dir / "checkpoints" / "last.ckpt") and kept in last_line
    step = int(last_line.split(" at step ")[1].split()[0])
    for path in (run_dir / "checkpoints").glob("*.ckpt"):
        checkpoint = torch.load(path, weights_only=True)
        assert checkpoint["global_step"] < step
        assert all(t.isfinite().all() for t in checkpoint["state_dict"].values()), path


def test_non_finite_weights_are_never_saved():
    from types import SimpleNamespace

    from handgrad.errors import TrainingDiverged
    from handgrad.run.divergence import StopOnNonFinite

    callback = StopOnNonFinite()
    trainer = SimpleNamespace(
        global_step=7,
        current_epoch=1,
        optimizers=[torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=3.0)],
        checkpoint_callback=None,
        callbacks=[],
    )
    module = SimpleNamespace(clip_grad_norm=1.0)
    callback.on_save_checkpoint(trainer, module, {"state_dict": {"w": torch.ones(2)}})
    assert callback.last_saved_step == 7
    with pytest.raises(TrainingDiverged, match=r"the weights \(w\) are not finite at step 7"):
        callback.on_save_checkpoint(
            trainer, module, {"state_dict": {"w": torch.tensor([1, 0]) / 0}}
        )


FLOATS = 2**21  # a checkpoint of 8 MB: the saver is stopped mid-write, however fast it writes
SAVER = f"""
import sys, torch
from handgrad.run.checkpoint_writing import AtomicCheckpointIO
io, path, n = AtomicCheckpointIO(), sys.argv[1], 0
while True:
    n += 1
    io.save_checkpoint({{"n": n, "w": torch.full(({FLOATS},), float(n))}}, path)
"""


def size_of(path) -> int:
    """The file's size; 0 while it does not exist (a save renames its temp file away)."""
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def stop_mid_write(process: subprocess.Popen, temp, deadline: float) -> int:
    """Stop the saver (SIGSTOP) while `temp` holds part of a checkpoint, under half of it;
    the part's size then. A save that ends before the stop lands is let go on (SIGCONT), and
    the next one is tried."""
    while True:
        assert process.poll() is None and time.monotonic() < deadline, "no save caught mid-write"
        if 0 < size_of(temp) < 2 * FLOATS:  # bytes: half of the float32 tensor
            process.send_signal(signal.SIGSTOP)
            _, status = os.waitpid(process.pid, os.WUNTRACED)
            assert os.WIFSTOPPED(status)
            size = size_of(temp)
            if 0 < size < 2 * FLOATS:
                return size
            process.send_signal(signal.SIGCONT)
        time.sleep(0.001)


def test_sigkill_while_saving_never_leaves_a_corrupt_last_ckpt(tmp_path):
    """The kill lands mid-write for certain: the saver is stopped while its temp file holds part
    of a checkpoint, checked, then killed; the part stays behind, last.ckpt is the save before."""
    path = tmp_path / "last.ckpt"
    process = subprocess.Popen([sys.executable, "-c", SAVER, str(path)], cwd=ROOT)
    temp = path.with_name(f".last.ckpt.{process.pid}.tmp")
    try:
        deadline = time.monotonic() + 60
        while not path.exists():  # a complete save first
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.01)
        part = stop_mid_write(process, temp, deadline)
        process.send_signal(signal.SIGKILL)
        process.wait()
    finally:
        process.kill()
        process.wait()
    assert size_of(temp) == part  # killed mid-write: the save never reached its rename
    checkpoint = torch.load(path, weights_only=True)  # would fail on a half-written file
    assert torch.equal(checkpoint["w"], torch.full((FLOATS,), float(checkpoint["n"])))


@pytest.mark.slow
def test_sigkill_mid_run_then_resume_finishes(tmp_path):
    process = subprocess.Popen(
        [
            sys.executable,
            str(SCRIPTS / TRAIN),
            "trainer.max_epochs=100000",
            "callbacks.progress_bar.refresh_rate=0",
            f"paths.root={tmp_path}",
        ],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob("runs/*/*/checkpoints/last.ckpt")):
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(0.5)  # a few more epochs, so the kill lands mid-run (maybe mid-save)
    process.send_signal(signal.SIGKILL)
    process.wait()
    (run_dir,) = (tmp_path / "runs").glob("*/*")
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    result = run_script(
        TRAIN, f"resume={run_dir}", f"trainer.max_epochs={checkpoint['epoch'] + 3}", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-2000:]
    final = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert final["global_step"] > checkpoint["global_step"]
    assert json.loads((run_dir / "metrics.json").read_text())["status"] == "ok"
