"""What the regression models share: the MSE criterion, the contract's loss, batch weight and
validation (`models/handgrad_module.py`), and their metrics.

Logged at each epoch's end: `train/loss` (the configured loss, averaged over the epoch's batches
by their rows), `val/loss` (the same on the validation batches), `val/mse` (mean squared error
over every validation element, whatever the reduction; in TensorBoard only where it differs from
`val/loss`, i.e. for `reduction: sum` or a `scale`, else it would draw the same curve twice) and,
for models with at most `MAX_LOGGED_PARAMS` weights, every weight as `weights/<name>`: the weights
the epoch ended with.
"""

from __future__ import annotations

import torch
import torchmetrics

from handgrad.grads.mse import mse, mse_grad
from handgrad.models.handgrad_module import HandgradModule

MAX_LOGGED_PARAMS = 8


class RegressionModule(HandgradModule):
    def __init__(self, reduction: str = "mean", scale: float = 1.0, **base_kwargs):
        super().__init__(**base_kwargs)
        self.reduction = reduction
        self.scale = scale
        self.val_mse = torchmetrics.MeanSquaredError()

    def not_in_tensorboard(self) -> set[str]:
        """val/mse where it is val/loss (mean reduction, no scale): one curve drawn once."""
        return {"val/mse"} if self.reduction == "mean" and self.scale == 1.0 else set()

    def criterion(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return mse(pred, target, self.reduction, self.scale)

    def criterion_grad(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """dL/dpred, the start of every hand backward pass."""
        return mse_grad(pred, target, self.reduction, self.scale)

    def loss(self, batch, state: None) -> tuple[torch.Tensor, None]:
        x, y = batch
        return self.criterion(self(x), y), None

    def batch_weight(self, batch) -> int:
        """Rows: the epoch's train/loss is the mean over its rows."""
        return batch[0].shape[0]

    def on_train_epoch_end(self) -> None:
        super().on_train_epoch_end()
        loss = self.epoch.loss.compute(self.trainer.strategy)  # under DDP: every rank's sums
        # sync_dist averages equal values (a no-op) and tells Lightning they are synced (no warning)
        self.log("train/loss", loss, prog_bar=True, sync_dist=True)
        if sum(p.numel() for p in self.parameters()) <= MAX_LOGGED_PARAMS:
            self.log_dict(self.scalar_parameters(prefix="weights/"), sync_dist=True)

    def record_validation(self, batch, state: None) -> None:
        x, y = batch
        pred = self(x)
        loss = self.criterion(pred, y)
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
