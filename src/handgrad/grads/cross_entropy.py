"""The mean cross-entropy and its gradient with respect to the logits, from one log-softmax.

For N rows of logits O (N x V) and targets y, with P = softmax(O),
    L = -(1/N) sum_n log P_n[y_n]
    dL/dO = (P - onehot(y)) / N
Both come from log P (one pass over the logits): L gathers it, dL/dO exponentiates it in place.

Derived step by step, with every shape: docs/derivations/cross-entropy.md
"""

from __future__ import annotations

import torch


def cross_entropy_and_grad(
    logits: torch.Tensor, targets: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """L (a scalar) and dL/dlogits for L = mean cross-entropy; logits (..., V), targets (...)
    class indices."""
    log_probs = logits.log_softmax(-1)
    index = targets.unsqueeze(-1)
    loss = -log_probs.gather(-1, index).mean()
    grad = log_probs.exp_()  # P, in the log-probabilities' memory
    grad.scatter_add_(-1, index, -torch.ones_like(grad[..., :1]))
    return loss, grad.div_(targets.numel())
