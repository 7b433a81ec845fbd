"""One time step of torch's nn.LSTM layer, forward and backward (torch's gate order i, f, g, o).

Forward, from the step's input part P_t = X_t W_ihᵀ + b_ih (B x 4H; the layer computes it for
every t at once) and the carried state (H_{t-1}, C_{t-1}) (B x H each):
    A   = P_t + H_{t-1} W_hhᵀ + b_hh                       (B x 4H) = [A_i, A_f, A_g, A_o]
    I   = σ(A_i)   F = σ(A_f)   G = tanh(A_g)   O = σ(A_o)   (B x H each)
    C_t = F ⊙ C_{t-1} + I ⊙ G                               (the cell state)
    H_t = O ⊙ tanh(C_t)

Backward, given dH_t (from the layer above and from step t+1) and dC_t (from step t+1; 0 after
the last step):
    dO       = dH_t ⊙ tanh(C_t)
    dC       = dC_t + dH_t ⊙ O ⊙ (1 - tanh²(C_t))          (every use of C_t: the cell-state path)
    dI       = dC ⊙ G     dF = dC ⊙ C_{t-1}     dG = dC ⊙ I
    dA       = [dI ⊙ I(1 - I), dF ⊙ F(1 - F), dG ⊙ (1 - G²), dO ⊙ O(1 - O)]      (B x 4H)
    dC_{t-1} = dC ⊙ F
    dH_{t-1} = dA W_hh                                      (this step's share of it)
A sums both projections, so dA is the gradient of P_t and of H_{t-1} W_hhᵀ + b_hh alike; the
layer sums it over t into dW_ih, db_ih, dW_hh, db_hh (grads/stacked_rnn.py). The gates'
derivatives are written through their outputs (grads/activations.py).

Derived step by step, with every shape: docs/derivations/recurrent-cells.md#nnlstm
"""

from __future__ import annotations

import torch

from handgrad.grads.activations import activation_slope


class LSTMStep:
    """The LSTM's step: state (H, C); `forward` keeps what `backward` needs."""

    state_size = 2
    shares_gate_grads = True  # dA is the gradient of both projections

    @staticmethod
    def forward(inputs: torch.Tensor, state: tuple, W_hh: torch.Tensor, b_hh: torch.Tensor):
        """(H_t, C_t) and what the backward keeps, from P_t (B x 4H) and (H_{t-1}, C_{t-1})."""
        h, c = state
        i, f, g, o = (torch.addmm(b_hh, h, W_hh.T) + inputs).chunk(4, dim=1)
        i, f, g, o = i.sigmoid(), f.sigmoid(), g.tanh(), o.sigmoid()
        c_next = f * c + i * g
        tanh_c = c_next.tanh()
        return (o * tanh_c, c_next), (i, f, g, o, c, tanh_c)

    @staticmethod
    def backward(grad_state: tuple, saved: tuple, W_hh: torch.Tensor):
        """(dP_t, d(H_{t-1} W_hhᵀ + b_hh), (dH_{t-1}, dC_{t-1})) from (dH_t, dC_t)."""
        grad_h, grad_c = grad_state
        i, f, g, o, c_prev, tanh_c = saved
        grad_c = grad_c + grad_h * o * activation_slope("tanh", tanh_c)
        grad_gates = torch.cat(
            [
                grad_c * g * activation_slope("sigmoid", i),
                grad_c * c_prev * activation_slope("sigmoid", f),
                grad_c * i * activation_slope("tanh", g),
                grad_h * tanh_c * activation_slope("sigmoid", o),
            ],
            dim=1,
        )  # (B x 4H)
        return grad_gates, grad_gates, (grad_gates @ W_hh, grad_c * f)
