"""A callback for DDP tests: every rank's final weights, to compare the replicas."""

from __future__ import annotations

import lightning as L
import torch


class RankWeights(L.Callback):
    """Each rank saves its parameters at the end of fit as `<dirpath>/rank<r>.pt`."""

    def __init__(self, dirpath: str):
        self.dirpath = dirpath

    def on_fit_end(self, trainer, pl_module) -> None:
        weights = {name: p.detach().clone() for name, p in pl_module.named_parameters()}
        torch.save(weights, f"{self.dirpath}/rank{trainer.global_rank}.pt")
