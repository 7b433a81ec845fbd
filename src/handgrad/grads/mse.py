"""Mean-squared-error loss and its gradient with respect to the prediction.

    L = s · reduce((Ŷ − Y)²)        dL/dŶ = 2 s (Ŷ − Y) / c
with reduce = sum (c = 1) or mean (c = the element count) and s the scale.

Derived step by step, with every shape: docs/derivations/linear-regression.md#the-loss-gradient
"""

from __future__ import annotations

import torch


def mse(pred: torch.Tensor, target: torch.Tensor, reduction: str, scale: float) -> torch.Tensor:
    """L = scale * reduce((pred - target)^2), reduce = sum or mean over every element."""
    squared = (pred - target).square()
    total = squared.sum() if reduction == "sum" else squared.mean()
    return scale * total


def mse_grad(
    pred: torch.Tensor, target: torch.Tensor, reduction: str, scale: float
) -> torch.Tensor:
    """dL/dpred = 2 * scale * (pred - target), divided by the element count for `mean`."""
    grad = 2.0 * scale * (pred - target)
    return grad if reduction == "sum" else grad / pred.numel()
