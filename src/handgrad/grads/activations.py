"""Elementwise activations A = f(Z) and their backward pass dL/dZ = dL/dA ⊙ f'(Z).

    relu:     f(z) = max(z, 0)            f'(z) = 1 if z > 0 else 0 = [A > 0]   (0 at the kink)
    sigmoid:  f(z) = 1 / (1 + exp(-z))    f'(z) = f(z) (1 - f(z))   = A (1 - A)
    tanh:     f(z) = tanh(z)              f'(z) = 1 - f(z)^2        = 1 - A^2
    identity: f(z) = z                    f'(z) = 1

Every derivative is written through the output A = f(Z), which the forward pass has computed
anyway, so a backward pass keeps only the activations' outputs (relu: A > 0 exactly when Z > 0).
The MLP (grads/mlp.py) and the scratch RNN (grads/scratch_rnn.py) both use these.

Derived step by step, with every shape: docs/derivations/mlp.md#the-activations-derivatives
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


def activation_slope(name: str, output: torch.Tensor) -> torch.Tensor | float:
    """f'(Z) for A = f(Z) = `output`, f = ACTIVATIONS[name] (1.0 for identity)."""
    if name == "relu":
        return (output > 0).to(output.dtype)
    if name == "sigmoid":
        return output * (1 - output)
    if name == "tanh":
        return 1 - output.square()
    if name == "identity":
        return 1.0
    raise ValueError(f"unknown activation {name!r}; known: {', '.join(ACTIVATIONS)}")


def activation_backward(name: str, output: torch.Tensor, grad_output: torch.Tensor) -> torch.Tensor:
    """dL/dZ = dL/dA ⊙ f'(Z) for A = f(Z) = `output`, given dL/dA = `grad_output`."""
    if name == "identity":
        return grad_output
    return grad_output * activation_slope(name, output)
