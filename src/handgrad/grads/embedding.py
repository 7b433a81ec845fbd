"""Backward pass of a lookup table: token and position embeddings.

Forward, for indices i (any shape, say B x T) into a table W (V x E):
    X[b, t] = W[i[b, t]]                                    (B x T x E)
Backward, given G = dL/dX (B x T x E): every use of row v adds its gradient to dW[v],
    dW[v] = Σ G[b, t] over every (b, t) with i[b, t] = v    (V x E; rows never used stay 0)
which is onehot(i)ᵀ G, computed as an index-add of G's rows into a zero table. index_add_ adds in
a fixed order on the CPU, and deterministically on CUDA under torch.use_deterministic_algorithms.

The position embedding is the same lookup with i[b, t] = t: row t gets Σ_b G[b, t], the rows past
the sequence length stay 0. A table used twice (the token embedding tied to the output head's
weight) gets the sum of both uses' gradients.

Derived step by step, with every shape: docs/derivations/transformer.md#embeddings-and-tied-weights
"""

from __future__ import annotations

import torch


def embedding_backward(
    indices: torch.Tensor, grad_out: torch.Tensor, num_rows: int
) -> torch.Tensor:
    """dW (num_rows x E) for X = W[indices], given dL/dX (indices.shape x E)."""
    rows = grad_out.reshape(-1, grad_out.shape[-1])
    table = rows.new_zeros(num_rows, rows.shape[-1])
    return table.index_add_(0, indices.reshape(-1), rows)


def position_embedding_backward(grad_out: torch.Tensor, num_rows: int) -> torch.Tensor:
    """dW (num_rows x E) for X[b, t] = W[t], given dL/dX (B x T x E)."""
    positions = torch.arange(grad_out.shape[1], device=grad_out.device)
    return embedding_backward(positions, grad_out.sum(0), num_rows)
