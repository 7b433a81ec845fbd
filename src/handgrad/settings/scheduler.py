"""The `scheduler.*` keys of torch's schedulers (their classes take any number: a cosine schedule
with `T_max=0` would train an epoch, then die inside torch with a ZeroDivisionError)."""

from __future__ import annotations

from collections.abc import Mapping

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
}


def check_scheduler(scheduler: Mapping) -> None:
    check_table(scheduler, "scheduler.", SCHEDULER)
