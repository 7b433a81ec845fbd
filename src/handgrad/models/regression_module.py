"""Shared training/validation steps for the regression models (MSE loss).

Logged: `train/loss` (the configured loss), `val/loss` (the same loss, averaged over batches),
`val/mse` (mean squared error over every validation element, whatever the reduction) and, for
models with at most `MAX_LOGGED_PARAMS` weights, every weight as `param/<name>`.
"""

from __future__ import annotations

import torch
import torchmetrics

from handgrad.errors import require
from handgrad.grads.mse import mse, mse_grad
from handgrad.models.handgrad_module import HandgradModule

REDUCTIONS = ("mean", "sum")
MAX_LOGGED_PARAMS = 8


class RegressionModule(HandgradModule):
    def __init__(self, reduction: str = "mean", scale: float = 1.0, **base_kwargs):
        super().__init__(**base_kwargs)
        require(reduction in REDUCTIONS, f"model.reduction={reduction!r} is not one of mean, sum")
        require(scale > 0, f"model.scale={scale!r} must be > 0")
        self.reduction = reduction
        self.scale = scale
        self.val_mse = torchmetrics.MeanSquaredError()

    def loss(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return mse(pred, target, self.reduction, self.scale)

    def loss_grad(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """dL/dpred, the start of every hand backward pass."""
        return mse_grad(pred, target, self.reduction, self.scale)

    def training_loss(self, batch) -> torch.Tensor:
        x, y = batch
        return self.loss(self.training_forward(x), y)

    def hand_loss_and_grads(self, batch):
        return self.training_hand_pass(*batch)

    def training_step(self, batch, batch_idx):
        logging_step = self.is_logging_step()  # asked before hand mode steps the optimizer
        if logging_step and sum(p.numel() for p in self.parameters()) <= MAX_LOGGED_PARAMS:
            # The weights this step's loss was computed with, in either backward mode.
            self.log_dict(self.scalar_parameters(prefix="param/"), on_step=True, on_epoch=False)
        loss = self.training_step_loss(batch)
        if logging_step:
            self.log("train/loss", loss, on_step=True, on_epoch=False, prog_bar=True)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        pred = self(x)
        loss = self.loss(pred, y)
        # sync_dist: under DDP the epoch's val/loss is the batch-size-weighted mean over all ranks
        # (monitored by checkpointing and early stopping, which must decide alike on every rank).
        self.log("val/loss", loss, batch_size=x.shape[0], prog_bar=True, sync_dist=True)
        self.val_mse(pred, y)
        self.log("val/mse", self.val_mse)

    def scalar_parameters(self, prefix: str = "") -> dict[str, float | torch.Tensor]:
        """Every weight as its own scalar: `w` for a 1-element tensor, `w_0_1` for w[0, 1]."""
        scalars = {}
        for name, param in self.named_parameters():
            flat = param.detach().reshape(-1)
            if flat.numel() == 1:
                scalars[prefix + name] = flat[0]
                continue
            for position, value in zip(_indices(param.shape), flat, strict=True):
                scalars[f"{prefix}{name}_{position}"] = value
        return scalars


def _indices(shape: torch.Size) -> list[str]:
    """Row-major index labels, e.g. ['0_0', '0_1', '1_0', '1_1'] for shape (2, 2)."""
    labels = [""]
    for size in shape:
        labels = [f"{label}_{i}" if label else str(i) for label in labels for i in range(size)]
    return labels
