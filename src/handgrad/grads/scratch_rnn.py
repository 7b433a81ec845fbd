"""Backpropagation through time for the scratch RNN cell, min-char-rnn style.

The forward is `handgrad.models.rnn_cells.ScratchRNN`.

Forward, time-major, tokens x_t (B) for t = 1..T, carried state H_0 (B x H, detached):
    A_t = W_xh[x_t] + H_{t-1} W_hh + b_h     (W_xh[x_t] == onehot(x_t) W_xh: a row lookup)
    H_t = f(A_t)                             f = tanh or relu
    O_t = H_t W_hq + b_q
and L = mean over the T*B tokens of cross-entropy(O_t, y_t). Given G_t = dL/dO_t:
    dW_hq = sum_t H_t^T G_t                  db_q = sum_t sum_b G_t
    dH_t  = G_t W_hq^T + dA_{t+1} W_hh^T     (dA_{T+1} = 0: nothing flows back from after T)
    dA_t  = dH_t ⊙ f'(A_t)                   f' = 1 - H_t^2 (tanh), [H_t > 0] (relu)
    dW_hh = sum_t H_{t-1}^T dA_t             (t = 1 uses the carried H_0 as a constant)
    db_h  = sum_t sum_b dA_t
    dW_xh[v] = sum of dA_t[b] over every (t, b) with x_t[b] = v
H_0 is detached, so dH_0 = dA_1 W_hh^T is never formed: the gradient stops at the batch start.

Derived step by step, with every shape: docs/derivations/scratch-rnn.md
"""

from __future__ import annotations

import torch

from handgrad.grads.activations import activation_slope


def rnn_backward(
    tokens: torch.Tensor,
    h0: torch.Tensor,
    hiddens: torch.Tensor,
    grad_logits: torch.Tensor,
    W_hh: torch.Tensor,
    W_hq: torch.Tensor,
    activation: str,
) -> dict[str, torch.Tensor]:
    """One gradient per parameter of the scratch RNN (see the module docstring for the math).

    tokens (T x B) input indices, h0 (B x H) the initial state, hiddens (T x B x H) the states
    H_1..H_T of the forward pass, grad_logits (T x B x V) = dL/dO_t.
    """
    num_steps, _, size = hiddens.shape
    vocab_size = grad_logits.shape[-1]
    flat_grad_logits = grad_logits.reshape(-1, vocab_size)

    # dA_t, built in place: first the G_t W_hq^T part of dH_t for every t at once, then, from
    # t = T down, + dA_{t+1} W_hh^T and ⊙ f'(A_t). The slope is taken per step, on a B x H slice
    # that is still in cache, rather than over all T steps at once (one more pass over memory).
    grad_pre = grad_logits @ W_hq.T
    for t in reversed(range(num_steps)):
        if t < num_steps - 1:
            grad_pre[t] += grad_pre[t + 1] @ W_hh.T
        grad_pre[t] *= activation_slope(activation, hiddens[t])

    flat_grad_pre = grad_pre.reshape(-1, size)
    # dW_hh = sum_t H_{t-1}^T dA_t: H_0^T dA_1, plus H_1..H_{T-1} against dA_2..dA_T in one product
    grad_W_hh = h0.T @ grad_pre[0]
    if num_steps > 1:
        grad_W_hh += hiddens[:-1].reshape(-1, size).T @ grad_pre[1:].reshape(-1, size)
    grad_W_xh = torch.zeros(vocab_size, size, dtype=grad_pre.dtype, device=grad_pre.device)
    grad_W_xh.index_add_(0, tokens.reshape(-1), flat_grad_pre)
    return {
        "W_xh": grad_W_xh,
        "W_hh": grad_W_hh,
        "b_h": flat_grad_pre.sum(0),
        "W_hq": hiddens.reshape(-1, size).T @ flat_grad_logits,
        "b_q": flat_grad_logits.sum(0),
    }
