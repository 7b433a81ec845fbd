"""Every run and every sweep owns its dir: runs started together never share one, a live run's dir
is locked (resume= of it is refused naming the PID), and the OS frees the lock of a killed run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest
import torch

from handgrad.errors import RunDirTaken
from handgrad.run import dir_claim
from handgrad.run.task import train
from helpers.runs import SCRIPTS, compose_config, run_script, run_script_in_this_process

LINEAR = ["trainer.max_epochs=2", "callbacks.progress_bar.refresh_rate=0"]


def claim(path: str) -> str:
    return str(dir_claim.claim_new(Path(path)))


def test_runs_claiming_one_name_at_once_each_get_their_own_dir(tmp_path):
    wanted = tmp_path / "runs" / "12-00-00_linear"
    with ProcessPoolExecutor(max_workers=4) as pool:
        claimed = list(pool.map(claim, [str(wanted)] * 8))
    assert sorted(claimed) == sorted([str(wanted)] + [f"{wanted}_{k}" for k in range(1, 8)]), (
        "each of 8 processes gets one dir, none shared"
    )


def hold_lock_in_another_process(run_dir: Path) -> subprocess.Popen:
    """A process that locks `run_dir` as a live run does, then sleeps until killed."""
    code = (
        "import sys, time; from pathlib import Path; from handgrad.run import dir_claim; "
        "dir_claim.lock(Path(sys.argv[1]), 'test'); print('locked', flush=True); time.sleep(600)"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code, str(run_dir)], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout.readline().strip() == "locked"
    return holder


def test_a_live_lock_names_its_pid_and_kill_9_frees_it_at_once(tmp_path):
    run_dir = tmp_path / "run"
    holder = hold_lock_in_another_process(run_dir)
    try:
        assert dir_claim.live_holder(run_dir) == holder.pid
        with pytest.raises(RunDirTaken, match=f"still running \\(PID {holder.pid}\\)"):
            dir_claim.lock(run_dir, f"resume={run_dir}")
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert dir_claim.live_holder(run_dir) is None  # no stale lock after kill -9
    dir_claim.lock(run_dir, "test")
    assert (run_dir / dir_claim.LOCK_FILE).read_text().strip() == str(os.getpid())
    dir_claim.release(run_dir)


def test_resume_of_a_live_run_is_one_line_naming_the_pid(tmp_path):
    run_dir = tmp_path / "run"
    train(compose_config(LINEAR, run_dir))
    (run_dir / ".hydra").mkdir()  # what Hydra writes beside a run
    (run_dir / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in LINEAR))
    before = (run_dir / "checkpoints" / "last.ckpt").read_bytes()
    holder = hold_lock_in_another_process(run_dir)
    try:
        result = run_script_in_this_process("train.py", f"resume={run_dir}", cwd=tmp_path)
    finally:
        holder.kill()
        holder.wait()
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.splitlines() == [
        f"error: resume={run_dir}: {run_dir} belongs to a run that is still running "
        f"(PID {holder.pid}); wait for it to end or stop it first"
    ]
    assert (run_dir / "checkpoints" / "last.ckpt").read_bytes() == before


def test_a_named_run_dir_holding_another_runs_files_is_refused(tmp_path):
    run_dir = tmp_path / "taken"
    train(compose_config(LINEAR, run_dir))
    files = sorted(p.name for p in run_dir.iterdir())
    result = run_script_in_this_process(
        "train.py", *LINEAR, f"hydra.run.dir={run_dir}", cwd=tmp_path
    )
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.splitlines() == [
        f"error: hydra.run.dir={run_dir} already holds another run's files; name a new dir, "
        "or continue a run with resume=<its dir>"
    ]
    assert sorted(p.name for p in run_dir.iterdir()) == files


def test_a_checkpoint_of_a_live_run_is_read_with_a_warning(tmp_path, caplog):
    source = tmp_path / "live"
    train(compose_config(LINEAR, source))
    holder = hold_lock_in_another_process(source)
    try:
        ckpt = source / "checkpoints" / "last.ckpt"
        train(
            compose_config([*LINEAR, "trainer.max_epochs=3", f"ckpt_path={ckpt}"], tmp_path / "b")
        )
    finally:
        holder.kill()
        holder.wait()
    warning = f"ckpt_path={ckpt} belongs to a run that is still training (PID {holder.pid})"
    assert any(warning in r.getMessage() for r in caplog.records)
    assert torch.load(tmp_path / "b" / "checkpoints" / "last.ckpt")["epoch"] == 2


# --- real processes started together -----------------------------------------------------------


def taken_in_advance(folder: Path, pattern: str, seconds: int = 90) -> set[Path]:
    """Dirs named as runs started in each of the next `seconds` seconds would be: whichever second
    the runs start in, their time-stamped name is taken and they must claim another."""
    now = time.time()
    stamps = {time.strftime(pattern, time.localtime(now + k)) for k in range(-1, seconds)}
    for stamp in stamps:
        (folder / stamp).mkdir(parents=True)
    return {folder / stamp for stamp in stamps}


def start(*args: str, cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.Popen(
        [sys.executable, str(SCRIPTS / "train.py"), *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
def test_three_runs_and_two_sweeps_started_together_keep_their_own_dirs(tmp_path):
    today = time.strftime("%Y-%m-%d")
    occupied = taken_in_advance(tmp_path / "runs" / today, "%H-%M-%S_linear")
    occupied |= taken_in_advance(tmp_path / "multirun", f"{today}_%H-%M-%S")
    root = f"paths.root={tmp_path}"
    runs = [start(*LINEAR, f"optimizer.lr=0.0{k}", root, cwd=tmp_path) for k in (1, 2, 3)]
    sweeps = [
        start("-m", *LINEAR, f"seed={seed}", "optimizer.lr=0.01,0.02", root, cwd=tmp_path)
        for seed in (1, 2)
    ]
    for process in [*runs, *sweeps]:
        _, stderr = process.communicate(timeout=300)
        assert process.returncode == 0, stderr[-3000:]
    assert all(not any(d.iterdir()) for d in occupied), "a taken dir was written into"

    run_dirs = [d for d in (tmp_path / "runs" / today).iterdir() if d not in occupied]
    assert all(json.loads((d / "metrics.json").read_text())["status"] == "ok" for d in run_dirs)
    lrs = sorted(lr_of(d) for d in run_dirs)
    assert lrs == ["optimizer.lr=0.01", "optimizer.lr=0.02", "optimizer.lr=0.03"]
    sweep_dirs = [d for d in (tmp_path / "multirun").iterdir() if d not in occupied]
    seeds = sorted(seed_of(job) for sweep in sweep_dirs for job in jobs(sweep))
    assert len(sweep_dirs) == 2 and seeds == ["seed=1", "seed=1", "seed=2", "seed=2"]
    for sweep in sweep_dirs:
        assert len({seed_of(job) for job in jobs(sweep)}) == 1, "one sweep per dir"


def overrides(run_dir: Path) -> list[str]:
    return (run_dir / ".hydra" / "overrides.yaml").read_text().replace("- ", "").split()


def lr_of(run_dir: Path) -> str:
    return next(o for o in overrides(run_dir) if o.startswith("optimizer.lr="))


def seed_of(run_dir: Path) -> str:
    return next(o for o in overrides(run_dir) if o.startswith("seed="))


def jobs(sweep: Path) -> list[Path]:
    found = [d for d in sweep.iterdir() if (d / "metrics.json").is_file()]
    assert len(found) == 2, sorted(sweep.iterdir())
    return found


@pytest.mark.slow
def test_resume_of_a_live_run_is_refused_and_the_run_finishes_unharmed(tmp_path):
    live = start(*LINEAR, "trainer.max_epochs=400", f"paths.root={tmp_path}", cwd=tmp_path)
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob("runs/*/*/checkpoints/last.ckpt")):
        assert live.poll() is None and time.monotonic() < deadline, live.stderr.read()
        time.sleep(0.05)
    (run_dir,) = tmp_path.glob("runs/*/*")
    refused = run_script("train.py", f"resume={run_dir}", cwd=tmp_path)
    assert refused.returncode == 2 and refused.stdout == ""
    assert refused.stderr.splitlines() == [
        f"error: resume={run_dir}: {run_dir} belongs to a run that is still running "
        f"(PID {live.pid}); wait for it to end or stop it first"
    ]
    _, stderr = live.communicate(timeout=300)
    assert live.returncode == 0, stderr[-3000:]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["status"] == "ok" and metrics["checkpoints"]["last"]["step"] == 400 * 8
