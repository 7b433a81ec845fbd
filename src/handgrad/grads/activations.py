"""Elementwise activations A = f(Z) and their backward pass dL/dZ = dL/dA ⊙ f'(Z).

    relu:     f(z) = max(z, 0)            f'(z) = 1 if z > 0 else 0   (0 at the kink, like torch)
    sigmoid:  f(z) = 1 / (1 + exp(-z))    f'(z) = f(z) (1 - f(z))
    tanh:     f(z) = tanh(z)              f'(z) = 1 - f(z)^2
    identity: f(z) = z                    f'(z) = 1

sigmoid and tanh write their derivative through the output A = f(Z), which the forward pass has
already computed; relu needs Z (or A: the sign is the same).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "relu": torch.relu,
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "identity": lambda z: z,
}


def activation_backward(
    name: str, z: torch.Tensor, a: torch.Tensor, grad_a: torch.Tensor
) -> torch.Tensor:
    """dL/dZ = dL/dA ⊙ f'(Z) for A = f(Z), f = ACTIVATIONS[name]."""
    if name == "relu":
        return grad_a * (z > 0)
    if name == "sigmoid":
        return grad_a * a * (1 - a)
    if name == "tanh":
        return grad_a * (1 - a * a)
    if name == "identity":
        return grad_a
    raise ValueError(f"unknown activation {name!r}; known: {', '.join(ACTIVATIONS)}")
