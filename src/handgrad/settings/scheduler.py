"""The `scheduler.*` keys of torch's schedulers (their classes take any number: a cosine schedule
with `T_max=0` would train an epoch, then die inside torch with a ZeroDivisionError) and of ours
(`handgrad.optim.schedules`)."""

from __future__ import annotations

from collections.abc import Mapping

from handgrad.errors import require
from handgrad.settings.rules import Range, check_table

SCHEDULER = {
    # torch.optim.lr_scheduler.CosineAnnealingLR
    "T_max": Range(1, integer=True, note="epochs from the start to the floor"),
    "eta_min": Range(0),
    # torch.optim.lr_scheduler.ReduceLROnPlateau
    "factor": Range(0, 1, open=True, note="the lr is multiplied by it"),
    "patience": Range(0, integer=True),
    "threshold": Range(0),
    "cooldown": Range(0, integer=True),
    "min_lr": Range(0),
    "eps": Range(0),
    # handgrad.optim.schedules.WarmupCosine (total_steps last: its default, trainer.max_steps, is
    # -1 unless set, and the other keys' own mistakes are named first)
    "warmup_steps": Range(0, integer=True, note="optimizer steps of linear warmup"),
    "min_lr_ratio": Range(0, 1, note="the floor as a fraction of the lr"),
    "total_steps": Range(
        1,
        integer=True,
        note="the optimizer step the floor is reached at, from the start; "
        "by default trainer.max_steps: set one of them",
    ),
}


def check_scheduler(scheduler: Mapping) -> None:
    check_table(scheduler, "scheduler.", SCHEDULER)
    if "warmup_steps" in scheduler and "total_steps" in scheduler:
        warmup, total = scheduler["warmup_steps"], scheduler["total_steps"]
        require(
            warmup < total,
            f"scheduler.warmup_steps={warmup} must be less than scheduler.total_steps={total} "
            "(the step the cosine reaches the floor at, counted from the start)",
        )
