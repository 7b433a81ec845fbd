"""Learning-rate schedules of our own, stepped once per optimizer step (torch's are per epoch here).

A scheduler class whose `interval` is "step" is stepped by `HandgradModule` before every
optimizer step, in both backward modes, so that the scheduler's count of steps is the trainer's
`global_step`; its state is in Lightning's checkpoints, so a run resumed mid-epoch goes on with
the learning rate a straight run has.
"""

from __future__ import annotations

import math

import torch


def warmup_cosine(step: int, warmup_steps: int, total_steps: int, min_lr_ratio: float) -> float:
    """The factor the base learning rate is multiplied by at optimizer step `step` (from 0):

        (t + 1) / (W + 1)                               t < W        (linear warmup)
        r + (1 - r) · ½ (1 + cos(π (t - W) / (T - W)))  W <= t < T   (half a cosine)
        r                                               t >= T       (the floor)

    with t = step, W = warmup_steps, T = total_steps, r = min_lr_ratio: a warmup that never
    trains at lr 0, the whole lr at step W, down to the floor r·lr at step T, the floor after it.
    nanoGPT's `get_lr` (its min_lr is r·lr here, its lr_decay_iters T). With T <= W there is no
    cosine: the warmup, then the floor (nothing divides by T - W = 0).
    """
    if step < warmup_steps:
        return (step + 1) / (warmup_steps + 1)
    if step >= total_steps:
        return min_lr_ratio
    progress = (step - warmup_steps) / (total_steps - warmup_steps)
    return min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


class WarmupCosine(torch.optim.lr_scheduler.LRScheduler):
    """Linear warmup for `warmup_steps` optimizer steps, then cosine decay to `min_lr_ratio` times
    each group's lr at step `total_steps` (counted from the start, warmup included), then that
    floor: `warmup_cosine`'s factor times each parameter group's base lr, at every step.

    `last_epoch` (torch's name) counts optimizer steps here. The settings are part of
    `state_dict()`, as torch's schedulers' are: a resumed run keeps its checkpoint's schedule.
    """

    interval = "step"  # HandgradModule steps it per optimizer step, not per epoch

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        warmup_steps: int,
        total_steps: int,
        min_lr_ratio: float,
        last_epoch: int = -1,
    ):
        self.warmup_steps = warmup_steps
        self.total_steps = total_steps
        self.min_lr_ratio = min_lr_ratio
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        factor = warmup_cosine(
            self.last_epoch, self.warmup_steps, self.total_steps, self.min_lr_ratio
        )
        return [base_lr * factor for base_lr in self.base_lrs]
