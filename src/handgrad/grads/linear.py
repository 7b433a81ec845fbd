"""Backward pass of the affine map Y = X W + b.

With G = dL/dY (N x D_out):
    dL/dW = X^T G          (D_in x D_out)
    dL/db = sum_n G[n]     (D_out)
    dL/dX = G W^T          (N x D_in, needed when the map sits inside a deeper network)

Derived step by step, with every shape: docs/derivations/linear-regression.md
"""

from __future__ import annotations

import torch


def linear_backward(
    x: torch.Tensor, weight: torch.Tensor, grad_out: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(dL/dW, dL/db, dL/dX) for Y = X W + b given G = dL/dY."""
    return x.T @ grad_out, grad_out.sum(0), grad_out @ weight.T
