"""One time step of torch's nn.RNN layer (an Elman RNN, tanh or relu), forward and backward.

Forward, from the step's input part P_t = X_t W_ihᵀ + b_ih (B x H; the layer computes it for
every t at once) and the carried state H_{t-1} (B x H):
    A   = P_t + H_{t-1} W_hhᵀ + b_hh                       (B x H)
    H_t = f(A)                                             f = tanh or relu

Backward, given dH_t (from the layer above and from step t+1):
    dA       = dH_t ⊙ f'(A)          f' = 1 - H_t² (tanh), [H_t > 0] (relu)
    dH_{t-1} = dA W_hh                                     (this step's share of it)
dA is the gradient of P_t and of H_{t-1} W_hhᵀ + b_hh alike; the layer sums it over t into
dW_ih, db_ih, dW_hh, db_hh (grads/stacked_rnn.py). It is the scratch cell's step
(grads/scratch_rnn.py) with torch's parameter layout and two biases.

Derived step by step, with every shape: docs/derivations/recurrent-cells.md#nnrnn-elman
"""

from __future__ import annotations

import torch

from handgrad.grads.activations import ACTIVATIONS, activation_backward


class ElmanStep:
    """nn.RNN's step with `activation` (tanh or relu): state (H,); `forward` keeps H_t."""

    state_size = 1
    shares_gate_grads = True  # dA is the gradient of both projections

    def __init__(self, activation: str):
        self.activation = activation

    def forward(self, inputs: torch.Tensor, state: tuple, W_hh: torch.Tensor, b_hh: torch.Tensor):
        """(H_t,) and H_t again (all the backward keeps), from P_t (B x H) and (H_{t-1},)."""
        (h,) = state
        h = ACTIVATIONS[self.activation](torch.addmm(b_hh, h, W_hh.T) + inputs)
        return (h,), h

    def backward(self, grad_state: tuple, saved: torch.Tensor, W_hh: torch.Tensor):
        """(dP_t, d(H_{t-1} W_hhᵀ + b_hh), (dH_{t-1},)) from (dH_t,)."""
        grad_pre = activation_backward(self.activation, saved, grad_state[0])
        return grad_pre, grad_pre, (grad_pre @ W_hh,)
