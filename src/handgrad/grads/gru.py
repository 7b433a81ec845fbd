"""One time step of torch's nn.GRU layer, forward and backward (torch's gate order r, z, n).

Forward, from the step's input part P_t = X_t W_ihᵀ + b_ih = [P_r, P_z, P_n] (B x 3H; the layer
computes it for every t at once) and the carried state H_{t-1} (B x H):
    Q   = H_{t-1} W_hhᵀ + b_hh = [Q_r, Q_z, Q_n]            (B x 3H)
    R   = σ(P_r + Q_r)                                     (reset gate)
    Z   = σ(P_z + Q_z)                                     (update gate)
    N   = tanh(P_n + R ⊙ Q_n)                              (candidate state)
    H_t = (1 - Z) ⊙ N + Z ⊙ H_{t-1}  =  N + Z ⊙ (H_{t-1} - N)

Backward, given dH_t (from the layer above and from step t+1):
    dA_n = dH_t ⊙ (1 - Z) ⊙ (1 - N²)                       (through N's pre-activation)
    dA_r = dA_n ⊙ Q_n ⊙ R(1 - R)                           (the reset path)
    dA_z = dH_t ⊙ (H_{t-1} - N) ⊙ Z(1 - Z)                 (the update path)
    dP_t = [dA_r, dA_z, dA_n]                              (B x 3H)
    dQ   = [dA_r, dA_z, dA_n ⊙ R]                          (Q_n enters through R ⊙ Q_n)
    dH_{t-1} = dH_t ⊙ Z + dQ W_hh                          (the direct path, then through Q)
The layer sums dP_t into dW_ih, db_ih and dQ into dW_hh, db_hh over t (grads/stacked_rnn.py).
The gates' derivatives are written through their outputs (grads/activations.py).

Derived step by step, with every shape: docs/derivations/recurrent-cells.md#nngru
"""

from __future__ import annotations

import torch

from handgrad.grads.activations import activation_slope


class GRUStep:
    """The GRU's step: state (H,); `forward` keeps what `backward` needs."""

    state_size = 1
    shares_gate_grads = False  # dQ_n = dA_n ⊙ R differs from dP_n = dA_n

    @staticmethod
    def forward(inputs: torch.Tensor, state: tuple, W_hh: torch.Tensor, b_hh: torch.Tensor):
        """(H_t,) and what the backward keeps, from P_t (B x 3H) and (H_{t-1},)."""
        (h,) = state
        p_r, p_z, p_n = inputs.chunk(3, dim=1)
        q_r, q_z, q_n = torch.addmm(b_hh, h, W_hh.T).chunk(3, dim=1)
        r = (q_r + p_r).sigmoid()
        z = (q_z + p_z).sigmoid()
        n = (p_n + r * q_n).tanh()
        return (n + z * (h - n),), (h, r, z, n, q_n)

    @staticmethod
    def backward(grad_state: tuple, saved: tuple, W_hh: torch.Tensor):
        """(dP_t, dQ, (dH_{t-1},)) from (dH_t,)."""
        (grad_h,) = grad_state
        h_prev, r, z, n, q_n = saved
        grad_n = grad_h * (1 - z) * activation_slope("tanh", n)
        grad_r = grad_n * q_n * activation_slope("sigmoid", r)
        grad_z = grad_h * (h_prev - n) * activation_slope("sigmoid", z)
        grad_inputs = torch.cat([grad_r, grad_z, grad_n], dim=1)
        grad_hidden = torch.cat([grad_r, grad_z, grad_n * r], dim=1)
        return grad_inputs, grad_hidden, (torch.addmm(grad_h * z, grad_hidden, W_hh),)
