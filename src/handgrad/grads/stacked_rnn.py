"""Backpropagation through time for torch's multi-layer nn.RNN / nn.GRU / nn.LSTM, with dropout,
the input (one-hot or an embedding) and a linear head: the char-RNN's fused cells, with AWD-LSTM's
weight drop, locked dropout and embedding dropout (grads/rnn_dropout.py has their derivation).

The forward is `handgrad.models.rnn_cells.FusedRNN.trace` (the fused module's math written out).
Forward, time-major, tokens x_t (B) for t = 1..T, layers l = 0..L-1 of H units each:
    X⁰_t     = onehot(x_t)   or   (E ⊙ m)[x_t]           (B x V, or B x D with an nn.Embedding E;
                                                          m: embedding dropout's row mask, V x 1)
    P^l_t    = X^l_t W_ih^lᵀ + b_ih^l                    (B x kH, k = 1 rnn, 3 gru, 4 lstm;
                                                          one-hot: rows of W_ih^0ᵀ + b_ih^0, by x_t)
    S^l_t    = step(P^l_t, S^l_{t-1}; W̃_hh^l)            S = (H,), or (H, C) for the LSTM;
                                                          W̃_hh^l = W_hh^l ⊙ M_w^l (weight drop)
    X^{l+1}_t = H^l_t ⊙ M^l_t                            (M: the dropout mask, or all ones)
    O_t      = X^L_t W_qᵀ + b_q                          (the head, nn.Linear: W_q is V x H)
and L = mean over the T*B tokens of cross-entropy(O_t, y_t). The step is the cell's
(grads/elman_rnn.py, grads/gru.py, grads/lstm.py). S^l_0 is the carried state (zeros, or the
previous batch's last state, detached): a constant. With dropout p, every entry of M is 0 (with
probability p) or 1/(1 - p): torch drops between layers and the model before the head. M^l is
T x B x H (standard dropout: a fresh mask every step) or 1 x B x H (locked: one mask a sequence,
broadcast over t); M_w^l (kH x H, one for all t) and m are all ones without weight drop and
embedding dropout.

Backward, given G_t = dL/dO_t:
    dW_q = Σ_t G_tᵀ X^L_t         db_q = Σ_t Σ_b G_t         dX^L_t = G_t W_q
then for l = L-1..0:
    dH^l_t  = dX^{l+1}_t ⊙ M^l_t                         (the forward's mask, broadcast over t)
    for t = T..1 the step's backward takes dH^l_t plus what step t+1 sends back and returns
    dP^l_t, dQ^l_t (the gradient of Q^l_t = H^l_{t-1} W̃_hh^lᵀ + b_hh^l) and what it sends to t-1
    (through W̃_hh^l, the matrix the forward used)
    dW_ih^l = Σ_t dP^l_tᵀ X^l_t           db_ih^l = Σ_t Σ_b dP^l_t
    dW_hh^l = (Σ_t dQ^l_tᵀ H^l_{t-1}) ⊙ M_w^l                           (H^l_0 from the carry)
    db_hh^l = Σ_t Σ_b dQ^l_t              dX^l_t  = dP^l_t W_ih^l
The input: one-hot, dW_ih^0[:, v] = Σ of dP^0_t[b] over every (t, b) with x_t[b] = v (an
index-add; dX^0 is never formed); embedding, dE[v] = m[v] Σ of dX^0_t[b] over the same (t, b).
What reaches S^l_0 is dropped: the gradient stops at the batch start.

Derived step by step, with every shape: docs/derivations/stacked-rnn.md
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from handgrad.grads.elman_rnn import ElmanStep
from handgrad.grads.gru import GRUStep
from handgrad.grads.lstm import LSTMStep
from handgrad.grads.rnn_dropout import masked

Step = ElmanStep | GRUStep | LSTMStep


def time_step(cell: str, activation: str) -> Step:
    """The step of torch's `cell` layer: "rnn" (with `activation`), "gru" or "lstm"."""
    return {"rnn": ElmanStep(activation), "gru": GRUStep(), "lstm": LSTMStep()}[cell]


@dataclass
class LayerTape:
    """What one layer's forward keeps for the backward."""

    inputs: torch.Tensor | None  # X^l (T x B x D); None for layer 0 on one-hot input
    start: tuple[torch.Tensor, ...]  # S^l_0, the carried state (B x H each)
    outputs: torch.Tensor  # H^l_1..H^l_T (T x B x H)
    saved: list  # what each step's forward kept for its backward
    mask: torch.Tensor | None  # M^l (T x B x H; locked: 1 x B x H); None without dropout
    hh_mask: torch.Tensor | None = None  # M_w^l (kH x H), weight drop's; None without it


@dataclass
class StackTape:
    """What the forward of the whole network keeps for the backward."""

    tokens: torch.Tensor  # x (T x B)
    layers: list[LayerTape]
    head_inputs: torch.Tensor  # X^L (T x B x H)
    embedding_mask: torch.Tensor | None = None  # m (V x 1), embedding dropout's; None without it


def stacked_rnn_backward(
    step: Step,
    tape: StackTape,
    grad_logits: torch.Tensor,
    layer_weights: list[list[torch.Tensor]],
    head_weight: torch.Tensor,
) -> dict[str, torch.Tensor]:
    """One gradient per parameter, named as in `FusedRNN` (`rnn.weight_ih_l0`, `head.weight`, ...).

    layer_weights[l] = [W_ih^l, W_hh^l, b_ih^l, b_hh^l] (torch's `all_weights`), head_weight = W_q,
    grad_logits (T x B x V) = G_t for every t.
    """
    grads = {"head.weight": flat(grad_logits).T @ flat(tape.head_inputs)}
    grads["head.bias"] = flat(grad_logits).sum(0)
    grad_x = grad_logits @ head_weight  # dX^L (T x B x H)
    for layer in reversed(range(len(tape.layers))):
        record, (W_ih, W_hh, _, _) = tape.layers[layer], layer_weights[layer]
        grad_h = masked(grad_x, record.mask)
        grad_p, grad_q = backward_through_time(
            step, grad_h, record.saved, masked(W_hh, record.hh_mask)
        )
        grads.update(layer_grads(layer, record, grad_p, grad_q, tape.tokens, W_ih.shape[1]))
        if record.inputs is not None:
            grad_x = grad_p @ W_ih  # dX^l (T x B x D)
    if tape.layers[0].inputs is not None:
        grad_rows = index_sum(tape.tokens, grad_x, grad_logits.shape[-1])  # dẼ
        grads["embedding.weight"] = masked(grad_rows, tape.embedding_mask)
    return grads


def backward_through_time(step: Step, grad_outputs: torch.Tensor, saved: list, W_hh: torch.Tensor):
    """(dP, dQ), each (T x B x kH), for one layer given dH_t from above (T x B x H) for every t."""
    grad_state = tuple(torch.zeros_like(grad_outputs[0]) for _ in range(step.state_size))
    grad_p = grad_outputs.new_empty(*grad_outputs.shape[:2], W_hh.shape[0])
    grad_q = grad_p if step.shares_gate_grads else torch.empty_like(grad_p)
    for t in reversed(range(len(saved))):
        grad_state = (grad_state[0] + grad_outputs[t], *grad_state[1:])
        grad_p[t], grad_q[t], grad_state = step.backward(grad_state, saved[t], W_hh)
    return grad_p, grad_q


def layer_grads(
    layer: int,
    record: LayerTape,
    grad_p: torch.Tensor,
    grad_q: torch.Tensor,
    tokens: torch.Tensor,
    input_size: int,
) -> dict[str, torch.Tensor]:
    """dW_ih^l, dW_hh^l, db_ih^l, db_hh^l from dP^l and dQ^l (T x B x kH) and the layer's tape
    (dW_hh^l through weight drop's mask: the gradient of W_hh^l, not of W̃_hh^l)."""
    previous = torch.cat([record.start[0].unsqueeze(0), record.outputs[:-1]])  # H_0..H_{T-1}
    if record.inputs is None:  # one-hot input: X⁰ W_ihᵀ is a lookup, its gradient an index-add
        grad_W_ih = index_sum(tokens, grad_p, input_size).T.contiguous()  # W_ih's layout
    else:
        grad_W_ih = flat(grad_p).T @ flat(record.inputs)
    return {
        f"rnn.weight_ih_l{layer}": grad_W_ih,
        f"rnn.weight_hh_l{layer}": masked(flat(grad_q).T @ flat(previous), record.hh_mask),
        f"rnn.bias_ih_l{layer}": flat(grad_p).sum(0),
        f"rnn.bias_hh_l{layer}": flat(grad_q).sum(0),
    }


def index_sum(tokens: torch.Tensor, grads: torch.Tensor, vocab_size: int) -> torch.Tensor:
    """(V x N): row v = the sum of grads[t, b] (N wide) over every (t, b) with tokens[t, b] = v."""
    out = grads.new_zeros(vocab_size, grads.shape[-1])
    return out.index_add_(0, tokens.reshape(-1), flat(grads))


def flat(x: torch.Tensor) -> torch.Tensor:
    """(T x B x N) -> (T*B x N)."""
    return x.reshape(-1, x.shape[-1])
