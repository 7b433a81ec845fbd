"""Backward pass of a multi-layer perceptron, layer by layer (the chain rule, by hand).

Forward, for layers l = 1..L, with weights stored as nn.Linear stores them, W_l of shape
(D_l, D_{l-1}) = (out, in):
    A_0 = X                                  (N x D_0)
    Z_l = A_{l-1} W_l^T + b_l                (N x D_l)
    A_l = f_l(Z_l)                           (f_l: the hidden activation, f_L: the output one)
    L   = loss(A_L, Y)

Backward, starting from G_L = dL/dA_L (the loss gradient) and going down:
    δ_l       = dL/dZ_l = G_l ⊙ f_l'(Z_l)    (N x D_l)
    dL/dW_l   = δ_l^T A_{l-1}                (D_l x D_{l-1}, W_l's own layout)
    dL/db_l   = sum_n δ_l[n]                 (D_l)
    G_{l-1}   = dL/dA_{l-1} = δ_l W_l        (N x D_{l-1})
so δ_l = (δ_{l+1} W_{l+1}) ⊙ f_l'(Z_l). In the textbook layout W = W_l^T (in x out), Z = A W + b,
these read dL/dW = A_{l-1}^T δ_l and δ_l = (δ_{l+1} W_{l+1}^T) ⊙ f'(Z_l), as in grads/linear.py.
Computing dL/dW_l as δ_l^T A_{l-1} gives it in W_l's layout with no transpose copy, and G_0 (the
gradient for the input X) is never needed, so the first layer skips it. f_l'(Z_l) is written
through A_l (grads/activations.py), so the forward keeps only A_0..A_L.

The forward is `handgrad.models.mlp.MLP.trace`.

Derived step by step, with every shape: docs/derivations/mlp.md
"""

from __future__ import annotations

import torch

from handgrad.grads.activations import activation_backward


def mlp_backward(
    weights: list[torch.Tensor],
    activations: list[str],
    layer_inputs: list[torch.Tensor],
    grad_out: torch.Tensor,
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(dL/dW_l, dL/db_l) for every layer l = 1..L, first layer first.

    weights[l-1] = W_l in nn.Linear layout (out, in); activations[l-1] = f_l's name;
    layer_inputs = [A_0, ..., A_L] (A_L the prediction); grad_out = G_L = dL/dA_L. The bias
    gradient is returned for every layer; a layer without a bias simply ignores it.
    """
    grads = []
    grad_a = grad_out
    for layer in reversed(range(len(weights))):
        delta = activation_backward(activations[layer], layer_inputs[layer + 1], grad_a)
        grads.append((delta.T @ layer_inputs[layer], delta.sum(0)))
        if layer > 0:
            grad_a = delta @ weights[layer]
    return grads[::-1]
