"""LayerNorm over the last dimension and its backward pass.

Forward, for each row x (E wide) of X (N x E, or any leading shape), with gain γ and shift β (E):
    μ = mean(x)        rstd = 1 / sqrt(mean((x − μ)²) + ε)      (the biased variance, as torch)
    n = (x − μ) · rstd                                          (N x E; rstd is N x 1)
    y = γ ⊙ n + β                                               (N x E; no β without bias)
Backward, given dy = dL/dy (N x E), with means over a row's E entries:
    dγ = Σ_rows dy ⊙ n        dβ = Σ_rows dy                    (E)
    dn = γ ⊙ dy
    dx = rstd · (dn − mean(dn) − n · mean(dn ⊙ n))              (N x E)
The forward keeps n and rstd; x itself is not needed.

Derived step by step, with every shape: docs/derivations/transformer.md#layernorm
"""

from __future__ import annotations

import torch


def layernorm_forward(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, eps: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(y, n, rstd) for y = LayerNorm(x) over the last dimension; rstd keeps that dimension (1)."""
    centered = x - x.mean(-1, keepdim=True)
    rstd = (centered.square().mean(-1, keepdim=True) + eps).rsqrt()
    normed = centered * rstd
    out = normed * weight
    return (out if bias is None else out + bias), normed, rstd


def layernorm_backward(
    grad_out: torch.Tensor, normed: torch.Tensor, rstd: torch.Tensor, weight: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(dx, dγ, dβ) given dy = `grad_out` and the forward's n = `normed` and `rstd`."""
    rows = grad_out.reshape(-1, grad_out.shape[-1])
    grad_weight = (rows * normed.reshape(rows.shape)).sum(0)
    grad_normed = grad_out * weight
    grad_x = rstd * (
        grad_normed
        - grad_normed.mean(-1, keepdim=True)
        - normed * (grad_normed * normed).mean(-1, keepdim=True)
    )
    return grad_x, grad_weight, rows.sum(0)
