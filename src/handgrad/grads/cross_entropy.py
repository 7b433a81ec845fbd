"""Gradient of the mean cross-entropy with respect to the logits.

For N rows of logits O (N x V) and targets y, L = -(1/N) sum_n log softmax(O_n)[y_n], so
    dL/dO = (softmax(O) - onehot(y)) / N
"""

from __future__ import annotations

import torch


def cross_entropy_grad(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """dL/dlogits for L = mean cross-entropy; logits (..., V), targets (...) class indices."""
    grad = logits.softmax(-1)
    grad.scatter_add_(-1, targets.unsqueeze(-1), -torch.ones_like(grad[..., :1]))
    return grad / targets.numel()
