"""The char-RNN's AWD-LSTM regularisers (Merity et al. 2017, "Regularizing and Optimizing LSTM
Language Models"), forward and backward: weight drop, locked dropout, embedding dropout.

Each multiplies something by a mask M of 0s and 1/(1 - p)s, drawn as F.dropout draws them (each
entry dropped with probability p, the kept ones scaled so the expectation is unchanged). M is a
constant of the step, so the backward of Y = X ⊙ M is dX = dY ⊙ M; what differs is which tensor
is masked and which axes M is shared over (broadcast), and so where the gradient is summed.

Weight drop (DropConnect on the recurrent matrix; AWD's WeightDrop): one mask M_w (kH x H) per
layer per training step, the same for every time step t of the sequence,
    W̃_hh = W_hh ⊙ M_w,       Q_t = H_{t-1} W̃_hhᵀ + b_hh   for t = 1..T.
The BPTT of grads/stacked_rnn.py runs on W̃_hh (dH_{t-1} gets dQ_t W̃_hh) and sums
dW̃_hh = Σ_t dQ_tᵀ H_{t-1}; since W̃_hh depends on W_hh entry by entry,
    dW_hh = dW̃_hh ⊙ M_w                                    (dropped weights get no gradient).

Locked (variational) dropout (Gal & Ghahramani 2016; AWD's LockedDropout): on a layer's outputs
H (T x B x H), one mask M (1 x B x H) per sequence and feature, shared over time,
    X_t = H_t ⊙ M   for every t,        dH_t = dX_t ⊙ M
(M broadcasts over t: a unit dropped in a sequence is dropped at every one of its steps).
Standard dropout is the same with M (T x B x H): a fresh mask at every step.

Embedding dropout (AWD's embedded_dropout: whole characters dropped): one mask m (V x 1) over
the rows of the embedding E (V x D), the same for every position of the batch,
    Ẽ = E ⊙ m,      X_t[b] = Ẽ[x_t[b]],
so every occurrence of a dropped token id gets a zero input vector and every kept one its row
scaled by 1/(1 - p). With dẼ[v] = Σ of dX_t[b] over every (t, b) with x_t[b] = v (the lookup's
index-add, grads/embedding.py),
    dE = dẼ ⊙ m                                              (m broadcasts over the D columns).

Derived step by step, with every shape: docs/derivations/stacked-rnn.md
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def dropout_mask(
    like: torch.Tensor, p: float, shape: tuple[int, ...] | None = None
) -> torch.Tensor:
    """What F.dropout(x, p) multiplies x by: entries 0 (probability p) or 1/(1 - p), drawn from
    the global RNG, of `like`'s dtype and device and `shape` (default `like`'s own)."""
    ones = torch.ones_like(like) if shape is None else like.new_ones(shape)
    return F.dropout(ones, p)


def masked(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """x ⊙ mask (the mask broadcast over its size-1 axes), or x itself without a mask. It is its
    own backward: the gradient of x is grad ⊙ mask, when x has every axis the mask has (a
    weight, the embedding, a layer's outputs)."""
    return x if mask is None else x * mask
