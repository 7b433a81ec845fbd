"""last.ckpt is always the latest trained state, and a run interrupted anywhere (mid-epoch, in
validation, at an epoch boundary) resumes bit-identically to a run that was never interrupted:
weights, optimizer state and the logged metrics of the interrupted epoch."""

from __future__ import annotations

import os
import signal

import pytest
import torch
from omegaconf import open_dict

from handgrad.run.task import train
from helpers.corpus import corpus_cases
from helpers.run_files import last_checkpoint, scalars
from helpers.runs import HELPERS, compose_config, run_script
from helpers.same_tensors import assert_same_tensors

QUIET = ["device=cpu", "callbacks.progress_bar.refresh_rate=0", "trainer.log_every_n_steps=1"]
LINEAR = ["model=linear", "data.batch_size=16", "optimizer=adam"]  # 80 rows: 5 batches an epoch
MLP = ["model=mlp", "model.hidden=[8]", "data.n_samples=40", "data.in_features=6"]
MLP += ["data.out_features=3", "data.batch_size=8", "optimizer=adam", "optimizer.lr=0.01"]
TINY_RNN = ["model=rnn", "model.hidden_size=16", "data.max_tokens=2000", "data.batch_size=8"]
TINY_RNN += ["data.num_steps=8", "trainer.max_time=null", "callbacks.early_stopping=null"]
SCRATCH = [*TINY_RNN, "model.cell=scratch", "optimizer=sgd", "optimizer.lr=1", "~scheduler"]
LSTM = [*TINY_RNN, "model.num_layers=2", "model.dropout=0.3"]
BF16 = "device=cpu_bf16"  # after QUIET's device=cpu: the later override wins

MODELS = {
    "linear-autograd": LINEAR,
    "linear-hand": [*LINEAR, "model.backward=hand"],
    "mlp-autograd": MLP,
    "mlp-hand": [*MLP, "model.backward=hand", "optimizer=hand_adam"],
    "scratch-sequential-autograd": [*SCRATCH, "data.sampling=sequential"],
    "scratch-sequential-hand": [*SCRATCH, "data.sampling=sequential", "model.backward=hand"],
    "scratch-random-hand": [*SCRATCH, "data.sampling=random", "model.backward=hand"],
    "lstm-dropout-sequential": [*LSTM, "data.sampling=sequential"],
    "lstm-dropout-random": [*LSTM, "data.sampling=random"],
    "lstm-dropout-sequential-hand": [*LSTM, "data.sampling=sequential", "model.backward=hand"],
    # bfloat16 mixed precision on the CPU (model=rnn's default where the CPU has native bf16)
    "lstm-dropout-sequential-bf16": [*LSTM, "data.sampling=sequential", BF16],
    "lstm-dropout-sequential-hand-bf16": [
        *LSTM,
        "data.sampling=sequential",
        "model.backward=hand",
        BF16,
    ],
    "mlp-hand-bf16": [*MLP, "model.backward=hand", "optimizer=hand_adam", BF16],
}
# Where the second epoch is interrupted, as fractions of an epoch: its first batch, its middle,
# its next-to-last batch. The default run tries the middle; the slow run every one.
INTERRUPTS = {"first": 0.0, "middle": 0.5, "next-to-last": 1.0}


def run(tmp_path, name: str, overrides: list[str], interrupt: dict | None = None):
    """train() in this process; returns the run dir. `interrupt`: SignalAt's arguments; the run
    must then stop with SIGTERM's exit code 143."""
    run_dir = tmp_path / name
    cfg = compose_config([*QUIET, *overrides], run_dir)
    if interrupt is not None:
        with open_dict(cfg):
            cfg.callbacks.signal_at = {"_target_": "helpers.interrupts.SignalAt", **interrupt}
        with pytest.raises(SystemExit) as stopped:
            train(cfg)
        assert stopped.value.code == 143
    else:
        train(cfg)
    return run_dir


def resume(run_dir, overrides: list[str]):
    cfg = compose_config(
        [*QUIET, *overrides, f"ckpt_path={run_dir}/checkpoints/last.ckpt"], run_dir
    )
    train(cfg)


def epochs_done(checkpoint: dict) -> int:
    """The epochs whose batches all ran (what `trainer.max_epochs` is compared with)."""
    return checkpoint["loops"]["fit_loop"]["epoch_progress"]["current"]["processed"]


def assert_resumed_equals_straight(straight, resumed) -> None:
    a, b = last_checkpoint(straight), last_checkpoint(resumed)
    assert (a["epoch"], a["global_step"]) == (b["epoch"], b["global_step"])
    assert_same_tensors(a["state_dict"], b["state_dict"], "state_dict")
    assert_same_tensors(a["optimizer_states"], b["optimizer_states"], "optimizer_states")
    assert scalars(resumed) == scalars(straight)


@pytest.mark.parametrize(
    "where",
    [pytest.param(w, marks=[] if w == "middle" else pytest.mark.slow) for w in INTERRUPTS],
)
@pytest.mark.parametrize("name", corpus_cases(MODELS))
def test_mid_epoch_interrupt_resumes_bit_identically(tmp_path, name, where):
    overrides = [*MODELS[name], "trainer.max_epochs=3"]
    straight = run(tmp_path, "straight", overrides)
    per_epoch = last_checkpoint(straight)["global_step"] // 3
    assert per_epoch >= 3, "the interrupt must land inside an epoch"
    stop = per_epoch + 1 + round(INTERRUPTS[where] * (per_epoch - 2))  # in the 2nd epoch
    interrupted = run(tmp_path, "interrupted", overrides, {"after_step": stop})
    checkpoint = last_checkpoint(interrupted)
    assert (checkpoint["epoch"], checkpoint["global_step"]) == (1, stop)
    resume(interrupted, overrides)
    assert_resumed_equals_straight(straight, interrupted)


@pytest.mark.parametrize("name", corpus_cases(MODELS, ["linear-hand", "lstm-dropout-sequential"]))
@pytest.mark.parametrize("where", ["validation", "epoch-boundary"])
def test_interrupt_at_the_end_of_an_epoch_keeps_the_previous_epoch(tmp_path, name, where):
    overrides = [*MODELS[name], "trainer.max_epochs=3"]
    straight = run(tmp_path, "straight", overrides)
    per_epoch = last_checkpoint(straight)["global_step"] // 3
    if where == "validation":
        interrupt = {"in_validation_of_epoch": 1}
    else:
        interrupt = {"after_step": 2 * per_epoch}  # the second epoch's last batch
    interrupted = run(tmp_path, "interrupted", overrides, interrupt)
    checkpoint = last_checkpoint(interrupted)
    assert checkpoint["global_step"] == per_epoch, "the first epoch's end is the last whole state"
    resume(interrupted, overrides)
    assert_resumed_equals_straight(straight, interrupted)


@pytest.mark.parametrize(
    "name",
    corpus_cases(
        MODELS, ["linear-autograd", "mlp-hand", "scratch-sequential-hand", "lstm-dropout-random"]
    ),
)
@pytest.mark.parametrize("val_every", [1, 2])
def test_last_ckpt_follows_training_when_the_metric_stops_improving(tmp_path, name, val_every):
    """lr 1e-30: the monitored metric never improves after the first validation, so the best
    checkpoint stays at the first epoch while last.ckpt holds the last epoch and step."""
    frozen = [*MODELS[name], "optimizer.lr=1e-30", f"trainer.check_val_every_n_epoch={val_every}"]
    run_dir = run(tmp_path, "run", [*frozen, "trainer.max_epochs=4"])
    (best,) = (run_dir / "checkpoints").glob("best-*.ckpt")
    per_epoch = torch.load(best, weights_only=True)["global_step"] // val_every
    assert per_epoch >= 1
    assert (epochs_done(last_checkpoint(run_dir)), last_checkpoint(run_dir)["global_step"]) == (
        4,
        4 * per_epoch,
    )
    resume(run_dir, [*frozen, "trainer.max_epochs=6"])
    assert (epochs_done(last_checkpoint(run_dir)), last_checkpoint(run_dir)["global_step"]) == (
        6,
        6 * per_epoch,
    )


@pytest.mark.corpus
@pytest.mark.parametrize(("first", "then"), [("hand", "autograd"), ("autograd", "hand")])
def test_a_checkpoint_trains_on_in_the_other_backward_mode(tmp_path, first, then):
    """One model, one checkpoint format: the LSTM with dropout resumes in the other mode and ends
    where a straight run ends, up to float32 rounding (on CPU both modes draw the same masks)."""
    overrides = [*MODELS["lstm-dropout-sequential"], "trainer.max_epochs=3"]
    straight = run(tmp_path, "straight", [*overrides, f"model.backward={first}"])
    per_epoch = last_checkpoint(straight)["global_step"] // 3
    switched = run(
        tmp_path, "switched", [*overrides, f"model.backward={first}"], {"after_step": per_epoch + 2}
    )
    resume(switched, [*overrides, f"model.backward={then}"])
    a, b = last_checkpoint(straight), last_checkpoint(switched)
    assert (a["epoch"], a["global_step"]) == (b["epoch"], b["global_step"])
    assert b["hyper_parameters"]["backward"] == then
    for name, weight in a["state_dict"].items():
        torch.testing.assert_close(b["state_dict"][name], weight, rtol=1e-4, atol=1e-5, msg=name)


def test_a_budget_that_ends_mid_epoch_saves_the_last_step(tmp_path):
    run_dir = run(tmp_path, "run", [*LINEAR, "trainer.max_epochs=5", "trainer.max_steps=7"])
    assert last_checkpoint(run_dir)["global_step"] == 7


# --- DDP: two worker processes (device=ddp, ddp_fork), through the real command line ------------

DDP_LSTM = [*LSTM, "data.sampling=sequential", "callbacks.text_sample=null", "device=ddp"]
DDP_LSTM += ["callbacks.progress_bar.refresh_rate=0", "callbacks.last_checkpoint.every_n_seconds=0"]
DDP_LSTM += ["trainer.max_epochs=3"]  # 27 steps an epoch: both ranks train 4 of each batch's 8 rows
DDP_INTERRUPTS = {  # SignalAt's arguments, the exit code, the step last.ckpt holds then
    "sigterm-on-rank-1": ({"after_step": 40, "rank": 1}, 143, 40),
    "sigint-on-rank-0": ({"after_step": 30, "rank": 0, "signum": int(signal.SIGINT)}, 130, 30),
    "sigint-to-the-launcher": (
        {"after_step": 33, "rank": 0, "to_launcher": True, "signum": int(signal.SIGINT)},
        130,
        None,
    ),  # fmt: skip
    "sigterm-in-validation-on-rank-1": ({"in_validation_of_epoch": 1, "rank": 1}, 143, 55),
}


def train_cli(tmp_path, name: str, *args: str, interrupt: dict | None = None):
    """scripts/train.py (`interrupt`: SignalAt's arguments), with a timeout: a run whose launcher
    waits forever for its workers fails the test instead of hanging it."""
    if interrupt is not None:
        args += ("+callbacks.signal_at._target_=helpers.interrupts.SignalAt",)
        args += tuple(f"+callbacks.signal_at.{key}={value}" for key, value in interrupt.items())
    path = os.pathsep.join(filter(None, [str(HELPERS.parent), os.environ.get("PYTHONPATH")]))
    env = {"PYTHONPATH": path}  # helpers.interrupts in the workers
    return run_script("train.py", *args, cwd=tmp_path, timeout=150, env=env)


@pytest.fixture(scope="module")
def ddp_straight(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("ddp")
    result = train_cli(tmp_path, "straight", *DDP_LSTM, f"hydra.run.dir={tmp_path / 'straight'}")
    assert result.returncode == 0, result.stderr[-2000:]
    return tmp_path / "straight"


@pytest.mark.slow  # three 2-process runs through the command line: ~20 s each on 2 cores
@pytest.mark.corpus
@pytest.mark.parametrize("name", DDP_INTERRUPTS)
def test_ddp_interrupt_stops_every_rank_together_and_resumes_bit_identically(
    tmp_path, ddp_straight, name
):
    """A signal to one rank, or to the launching process: every rank stops at the same step and
    saves its part of last.ckpt, the run exits 130 / 143, and resume= ends where a straight run
    ends. In validation the ranks finish the pass and stop after the next training batch."""
    interrupt, code, step = DDP_INTERRUPTS[name]
    run_dir = tmp_path / "interrupted"
    result = train_cli(tmp_path, name, *DDP_LSTM, f"hydra.run.dir={run_dir}", interrupt=interrupt)
    assert result.returncode == code, result.stderr[-2000:]
    lines = [line for line in result.stdout.splitlines() if "interrupted at" in line]
    assert len(lines) == 1 and f"resume={run_dir}" in lines[0], result.stdout[-2000:]
    checkpoint = last_checkpoint(run_dir)
    if step is not None:
        assert checkpoint["global_step"] == step
    assert 27 < checkpoint["global_step"] < 81
    assert not (run_dir / "metrics.json").exists()
    resumed = train_cli(tmp_path, "resumed", f"resume={run_dir}")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert_resumed_equals_straight(ddp_straight, run_dir)
