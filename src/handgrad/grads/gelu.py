"""GELU, y = x Φ(x), in torch's two forms, and its backward pass dL/dx = dL/dy ⊙ y'(x).

    exact (F.gelu(x)):
        y  = x Φ(x),   Φ(x) = ½ (1 + erf(x / √2)),   φ(x) = Φ'(x) = exp(−x² / 2) / √(2π)
        y' = Φ(x) + x φ(x)
    tanh (F.gelu(x, approximate="tanh")), with u = √(2/π) (x + 0.044715 x³):
        y  = ½ x (1 + tanh u)
        y' = ½ (1 + tanh u) + ½ x (1 − tanh² u) √(2/π) (1 + 3 · 0.044715 x²)
The slope depends on x, not only on y (GELU is not monotonic), so the forward keeps its input.

Derived step by step, with every shape: docs/derivations/transformer.md#gelu
"""

from __future__ import annotations

import math

import torch

GELU_FORMS = ("tanh", "exact")
_SQRT_2_OVER_PI = math.sqrt(2 / math.pi)
_CUBIC = 0.044715


def gelu_forward(x: torch.Tensor, form: str) -> torch.Tensor:
    """y = GELU(x) in `form` ("tanh" or "exact")."""
    if form == "tanh":
        return 0.5 * x * (1 + _tanh_u(x))
    if form == "exact":
        return x * _normal_cdf(x)
    raise ValueError(f"unknown GELU form {form!r}; known: {', '.join(GELU_FORMS)}")


def gelu_backward(x: torch.Tensor, grad_out: torch.Tensor, form: str) -> torch.Tensor:
    """dL/dx = dL/dy ⊙ y'(x) for y = GELU(x) in `form`, x the forward's input."""
    if form == "tanh":
        tanh_u = _tanh_u(x)
        du_dx = _SQRT_2_OVER_PI * (1 + 3 * _CUBIC * x.square())
        return grad_out * (0.5 * (1 + tanh_u) + 0.5 * x * (1 - tanh_u.square()) * du_dx)
    if form == "exact":
        density = torch.exp(-0.5 * x.square()) / math.sqrt(2 * math.pi)
        return grad_out * (_normal_cdf(x) + x * density)
    raise ValueError(f"unknown GELU form {form!r}; known: {', '.join(GELU_FORMS)}")


def _tanh_u(x: torch.Tensor) -> torch.Tensor:
    """tanh(u), u = √(2/π) (x + 0.044715 x³)."""
    return torch.tanh(_SQRT_2_OVER_PI * (x + _CUBIC * x.pow(3)))


def _normal_cdf(x: torch.Tensor) -> torch.Tensor:
    """Φ(x), the standard normal's distribution function."""
    return 0.5 * (1 + torch.erf(x / math.sqrt(2)))
