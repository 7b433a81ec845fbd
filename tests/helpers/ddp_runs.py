"""Training runs of two DDP processes whose every rank's final weights are read back, to compare
the replicas (and a run against another backward mode)."""

from __future__ import annotations

import lightning as L
import torch
from omegaconf import open_dict

from handgrad.run.task import train
from helpers.runs import compose_config


class RankWeights(L.Callback):
    """Each rank saves its parameters at the end of fit as `<dirpath>/rank<r>.pt`."""

    def __init__(self, dirpath: str):
        self.dirpath = dirpath

    def on_fit_end(self, trainer, pl_module) -> None:
        weights = {name: p.detach().clone() for name, p in pl_module.named_parameters()}
        torch.save(weights, f"{self.dirpath}/rank{trainer.global_rank}.pt")


def train_ddp(run_dir, overrides: list[str]) -> tuple[float, list[dict]]:
    """train(cfg) with device=ddp (2 processes) into `run_dir`; returns its optimized metric and
    each rank's final weights."""
    cfg = compose_config([*overrides, "device=ddp"], run_dir)  # after any other device=
    with open_dict(cfg):
        cfg.callbacks.rank_weights = {
            "_target_": f"{__name__}.RankWeights",
            "dirpath": str(run_dir),
        }
    metric = train(cfg)
    ranks = [torch.load(run_dir / f"rank{r}.pt", weights_only=True) for r in range(2)]
    return metric, ranks
