"""scheduler=warmup_cosine: the closed form at chosen steps, the scheduler over parameter groups and
through its state_dict, and real runs that step it every optimizer step in both backward modes
(train/lr logged per step) and resume from a mid-epoch interrupt to the last bit."""

from __future__ import annotations

import io
import math

import pytest
import torch
from omegaconf import open_dict

from handgrad.errors import ConfigError
from handgrad.optim.schedules import WarmupCosine, warmup_cosine
from handgrad.run.task import train
from handgrad.settings import check_settings
from helpers.run_files import last_checkpoint, scalars
from helpers.runs import compose_config
from helpers.same_tensors import assert_same_tensors

# warmup_steps 10, total_steps 110 (100 steps of cosine), floor 0.1
SETTINGS = dict(warmup_steps=10, total_steps=110, min_lr_ratio=0.1)


@pytest.mark.parametrize(
    ("step", "factor"),
    [
        (0, 1 / 11),  # warmup never trains at lr 0
        (4, 5 / 11),
        (9, 10 / 11),
        (10, 1.0),  # the whole lr at the end of warmup
        (35, 0.1 + 0.9 * 0.5 * (1 + math.sqrt(0.5))),  # a quarter of the cosine: cos(π/4)
        (60, 0.55),  # halfway down: (1 + 0.1) / 2
        (109, 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.99))),
        (110, 0.1),  # the floor from total_steps on
        (10_000, 0.1),
    ],
)
def test_warmup_cosine_at_chosen_steps_is_the_closed_form(step, factor):
    assert warmup_cosine(step, **SETTINGS) == pytest.approx(factor, rel=1e-12, abs=0)


def test_no_warmup_starts_at_the_whole_lr_and_a_schedule_without_cosine_never_divides_by_zero():
    assert warmup_cosine(0, warmup_steps=0, total_steps=10, min_lr_ratio=0.0) == 1.0
    assert warmup_cosine(5, warmup_steps=0, total_steps=10, min_lr_ratio=0.0) == pytest.approx(0.5)
    # total_steps = warmup_steps: the warmup, then the floor
    assert warmup_cosine(4, warmup_steps=5, total_steps=5, min_lr_ratio=0.2) == 5 / 6
    assert warmup_cosine(5, warmup_steps=5, total_steps=5, min_lr_ratio=0.2) == 0.2


def group_lrs_over(steps: int, **settings) -> list[list[float]]:
    """The lr of each of three groups (base lrs 0.1, 0.5 and 0: frozen) before each of `steps`
    optimizer steps, the scheduler stepped after each as HandgradModule steps it."""
    params = [torch.nn.Parameter(torch.zeros(1)) for _ in range(3)]
    groups = [{"params": [p], "lr": lr} for p, lr in zip(params, (0.1, 0.5, 0.0), strict=True)]
    optimizer = torch.optim.SGD(groups)
    scheduler = WarmupCosine(optimizer, **settings)
    seen = []
    for _ in range(steps):
        seen.append([g["lr"] for g in optimizer.param_groups])
        optimizer.step()
        scheduler.step()
    return seen


def test_every_group_follows_the_schedule_from_its_own_lr():
    for step, lrs in enumerate(group_lrs_over(120, **SETTINGS)):
        factor = warmup_cosine(step, **SETTINGS)
        assert lrs == [0.1 * factor, 0.5 * factor, 0.0], f"step {step}"


def test_state_dict_holds_plain_values_and_resumes_the_same_lrs():
    params = [torch.nn.Parameter(torch.zeros(1))]
    optimizer = torch.optim.SGD(params, lr=0.1)
    scheduler = WarmupCosine(optimizer, **SETTINGS)
    for _ in range(37):
        optimizer.step()
        scheduler.step()
    buffer = io.BytesIO()
    torch.save(scheduler.state_dict(), buffer)
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)  # what Lightning's checkpoints must load with

    resumed_optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    resumed = WarmupCosine(resumed_optimizer, warmup_steps=1, total_steps=2, min_lr_ratio=0.5)
    resumed.load_state_dict(saved)  # the checkpoint's schedule, not the new settings
    for _ in range(3):
        optimizer.step(), scheduler.step()
        resumed_optimizer.step(), resumed.step()
        assert resumed.get_last_lr() == scheduler.get_last_lr()
    assert scheduler.get_last_lr() == [0.1 * warmup_cosine(40, **SETTINGS)]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            [],  # trainer.max_steps is -1 unless set
            "scheduler.total_steps=-1 must be an integer >= 1 (the optimizer step the floor is "
            "reached at, from the start; by default trainer.max_steps: set one of them)",
        ),
        (
            ["scheduler.total_steps=100", "scheduler.warmup_steps=100"],
            "scheduler.warmup_steps=100 must be less than scheduler.total_steps=100 (the step the "
            "cosine reaches the floor at, counted from the start)",
        ),
        (
            ["trainer.max_steps=50", "scheduler.min_lr_ratio=1.5"],
            "scheduler.min_lr_ratio=1.5 must be a number in [0, 1] (the floor as a fraction of "
            "the lr)",
        ),
    ],
)
def test_the_settings_refuse_a_schedule_that_cannot_be_meant_in_one_line(
    overrides, message, tmp_path
):
    cfg = compose_config(["scheduler=warmup_cosine", *overrides], tmp_path)
    with pytest.raises(ConfigError) as error:
        check_settings(cfg)
    assert str(error.value) == message


# --- real runs: stepped per optimizer step, logged per step, resumed mid-epoch -------------------

# 40 rows (all for training) in batches of 8: 5 optimizer steps an epoch, 20 in 4 epochs; warmup
# for 3 steps, the floor from step 12 on.
QUIET = ["device=cpu", "callbacks.progress_bar.refresh_rate=0", "trainer.log_every_n_steps=1"]
MLP = ["model=mlp", "model.hidden=[8]", "data.n_samples=40", "data.batch_size=8"]
MLP += ["data.in_features=6", "data.out_features=3"]
SCHEDULE = ["scheduler=warmup_cosine", "scheduler.warmup_steps=3", "scheduler.total_steps=12"]
SCHEDULE += ["scheduler.min_lr_ratio=0.2", "trainer.max_epochs=4"]
LR = 0.01
BACKWARDS = {
    "autograd": ["optimizer=adamw", f"optimizer.lr={LR}"],
    "hand": ["model.backward=hand", "optimizer=hand_adamw", f"optimizer.lr={LR}"],
}
STEPS = 20


def run(run_dir, overrides: list[str], interrupt_after: int | None = None):
    cfg = compose_config([*QUIET, *MLP, *SCHEDULE, *overrides], run_dir)
    if interrupt_after is None:
        train(cfg)
        return
    with open_dict(cfg):
        cfg.callbacks.signal_at = {
            "_target_": "helpers.interrupts.SignalAt",
            "after_step": interrupt_after,
        }
    with pytest.raises(SystemExit) as stopped:
        train(cfg)
    assert stopped.value.code == 143  # SIGTERM's


@pytest.mark.parametrize("backward", BACKWARDS)
def test_a_run_steps_the_schedule_every_optimizer_step_and_resumes_it_mid_epoch(backward, tmp_path):
    """train/lr at every step is the schedule's lr at that step (TensorBoard keeps float32), the
    last checkpoint's scheduler has counted every step, and a run interrupted in the middle of
    its second epoch (after step 7 of 20), then resumed, ends with the same weights, optimizer and
    scheduler state and the same logged curves as the straight run."""
    straight, interrupted = tmp_path / "straight", tmp_path / "interrupted"
    run(straight, BACKWARDS[backward])
    lrs = scalars(straight)["train/lr"]
    expected = {step: LR * warmup_cosine(step, 3, 12, 0.2) for step in range(STEPS)}
    assert lrs == pytest.approx(expected, rel=1e-6)
    checkpoint = last_checkpoint(straight)
    assert checkpoint["global_step"] == STEPS
    # the scheduler holds the lr the last step trained with (stepped before each step)
    assert checkpoint["lr_schedulers"][0]["last_epoch"] == STEPS - 1

    run(interrupted, BACKWARDS[backward], interrupt_after=7)
    assert last_checkpoint(interrupted)["global_step"] == 7
    resume = [*BACKWARDS[backward], f"ckpt_path={interrupted}/checkpoints/last.ckpt"]
    run(interrupted, resume)

    resumed = last_checkpoint(interrupted)
    assert (resumed["epoch"], resumed["global_step"]) == (checkpoint["epoch"], STEPS)
    for key in ("state_dict", "optimizer_states", "lr_schedulers"):
        assert_same_tensors(resumed[key], checkpoint[key], key)
    assert scalars(interrupted) == scalars(straight)
