"""Resume: continue a run bit-identically, in its own dir and TensorBoard run; interrupts save."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from handgrad.run.task import train
from helpers.runs import SCRIPTS, compose_config, run_script


def final_weights(run_dir):
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    return checkpoint["state_dict"], checkpoint["global_step"]


def only_run_dir(root):
    (run_dir,) = (root / "runs").glob("*/*")
    return run_dir


TINY_RNN = [
    "model=rnn",
    "model.hidden_size=16",
    "model.dropout=0.2",
    "data.max_tokens=1200",
    "data.batch_size=4",
    "data.num_steps=8",
    "data.sampling=sequential",
]


@pytest.mark.parametrize(
    "overrides",
    [
        # In-process runs of every model cover bit-identity (test_last_checkpoint.py); these go
        # through the CLI's resume=<run dir>.
        pytest.param(["model=linear", "optimizer=adam"], marks=pytest.mark.slow),
        pytest.param(
            ["model=mlp", "model.hidden=[8]", "optimizer=hand_adam", "model.backward=hand"],
            marks=pytest.mark.slow,
        ),
        pytest.param(TINY_RNN, marks=pytest.mark.corpus),
    ],
    ids=["linear-adam", "mlp-hand_adam", "rnn-sequential-dropout"],
)
def test_resume_is_bit_identical_to_a_straight_run(tmp_path, overrides):
    straight, split = tmp_path / "straight", tmp_path / "split"
    common = [*overrides, "trainer.log_every_n_steps=1"]
    train(compose_config([*common, "trainer.max_epochs=4"], straight))  # as the CLI would
    result = run_script(
        "train.py", *common, "trainer.max_epochs=2", f"paths.root={split}", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-2000:]
    run_dir = only_run_dir(split)
    _, half_step = final_weights(run_dir)

    result = run_script("train.py", f"resume={run_dir}", "trainer.max_epochs=4", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert only_run_dir(split) == run_dir, "resume must not open a new run dir"

    expected, expected_step = final_weights(straight)
    resumed, resumed_step = final_weights(run_dir)
    assert resumed_step == expected_step == 2 * half_step
    for name in expected:
        assert torch.equal(resumed[name], expected[name]), name

    events = EventAccumulator(str(run_dir))
    events.Reload()
    curve = "train/ppl" if "train/ppl" in events.Tags()["scalars"] else "train/loss"
    steps = [point.step for point in events.Scalars(curve)]
    assert steps == sorted(set(steps)), "no duplicate steps in the resumed TensorBoard run"
    assert max(steps) > half_step


@pytest.mark.corpus
@pytest.mark.parametrize(
    ("sig", "code"),
    [(signal.SIGINT, 130), pytest.param(signal.SIGTERM, 143, marks=pytest.mark.slow)],
)
def test_interrupt_saves_last_checkpoint_and_resume_finishes(tmp_path, sig, code):
    """The char-RNN stopped by a real signal in its second epoch or later (its epoch state then
    comes from the checkpoint: no epoch-start hook runs), resumed with resume=<run dir>."""
    process = subprocess.Popen(
        [
            sys.executable,
            str(SCRIPTS / "train.py"),
            *TINY_RNN,
            "trainer.max_time=null",
            "trainer.max_epochs=100000",
            "callbacks.progress_bar.refresh_rate=0",
            f"paths.root={tmp_path}",
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        # pytest-xdist workers ignore SIGINT and children inherit that: give the run a default
        # disposition, as a terminal would, so Python turns Ctrl-C into KeyboardInterrupt.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 60
    while not list((tmp_path / "runs").glob("*/*/checkpoints/last.ckpt")):
        assert time.monotonic() < deadline and process.poll() is None, process.stdout.read()
        time.sleep(0.2)
    process.send_signal(sig)
    output, _ = process.communicate(timeout=60)
    assert process.returncode == code, output[-2000:]
    run_dir = only_run_dir(tmp_path)
    assert "interrupted" in output and f"resume={run_dir}" in output
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert checkpoint["global_step"] > 0

    more_epochs = f"trainer.max_epochs={checkpoint['epoch'] + 2}"
    result = run_script("train.py", f"resume={run_dir}", more_epochs, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    _, final_step = final_weights(run_dir)
    assert final_step > checkpoint["global_step"]
    assert '"status": "ok"' in (run_dir / "metrics.json").read_text()
