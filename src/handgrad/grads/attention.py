"""Causal multi-head self-attention from a fused qkv projection, and its backward pass.

Forward, for B sequences of T positions, E = H·d wide (H heads of d each):
    Q, K, V  = the three E-wide thirds of qkv (B x T x 3E), each split into heads  (B x H x T x d)
    S        = Q Kᵀ / √d                                          (B x H x T x T)
    S[i, j]  = −∞ for j > i                                       (causal: no looking ahead)
    P        = softmax(S) over j                                  (P[i, j] = 0 for j > i)
    P̃        = P ⊙ M                                              (M: dropout mask, or all ones)
    O        = P̃ V                                                (B x H x T x d)
    Y        = O with the heads merged back side by side          (B x T x E)
Backward, given dY (B x T x E), split into heads as dO (B x H x T x d):
    dV = P̃ᵀ dO        dP̃ = dO Vᵀ        dP = dP̃ ⊙ M
    dS = P ⊙ (dP − rowsum(dP ⊙ P))                                (the softmax's Jacobian,
                                                                   O(T²); 0 where P is 0)
    dQ = dS K / √d     dK = dSᵀ Q / √d
    d(qkv) = [dQ, dK, dV], each with its heads merged             (B x T x 3E)
The softmax row's Jacobian is ∂P_i/∂S_j = P_i (δ_ij − P_j); the masked entries need no special
case: their P is exactly 0.

Derived step by step, with every shape: docs/derivations/transformer.md#causal-self-attention
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass
class AttentionTape:
    """What the forward keeps for the backward."""

    q: torch.Tensor  # (B x H x T x d), likewise k and v (views of qkv)
    k: torch.Tensor
    v: torch.Tensor
    probs: torch.Tensor  # P (B x H x T x T), before dropout
    mask: torch.Tensor | None  # M (B x H x T x T); None without dropout


def attention_forward(
    qkv: torch.Tensor, n_head: int, mask: torch.Tensor | None = None
) -> tuple[torch.Tensor, AttentionTape]:
    """Y (B x T x E) from qkv (B x T x 3E), with P's dropout mask M (B x H x T x T) if any."""
    q, k, v = (split_heads(part, n_head) for part in qkv.chunk(3, dim=-1))
    steps = qkv.shape[1]
    future = torch.ones(steps, steps, dtype=torch.bool, device=qkv.device).triu(1)
    scores = (q @ k.transpose(-2, -1)) / math.sqrt(q.shape[-1])
    probs = scores.masked_fill(future, -math.inf).softmax(-1)
    dropped = probs if mask is None else probs * mask
    return merge_heads(dropped @ v), AttentionTape(q, k, v, probs, mask)


def attention_backward(grad_out: torch.Tensor, tape: AttentionTape) -> torch.Tensor:
    """d(qkv) (B x T x 3E) given dY (B x T x E)."""
    q, k, v, probs, mask = tape.q, tape.k, tape.v, tape.probs, tape.mask
    grad_o = split_heads(grad_out, q.shape[1])
    dropped = probs if mask is None else probs * mask
    grad_v = dropped.transpose(-2, -1) @ grad_o
    grad_probs = grad_o @ v.transpose(-2, -1)
    if mask is not None:
        grad_probs = grad_probs * mask
    grad_scores = softmax_backward(probs, grad_probs) / math.sqrt(q.shape[-1])
    grad_q, grad_k = grad_scores @ k, grad_scores.transpose(-2, -1) @ q
    return torch.cat([merge_heads(g) for g in (grad_q, grad_k, grad_v)], dim=-1)


def softmax_backward(probs: torch.Tensor, grad_probs: torch.Tensor) -> torch.Tensor:
    """dS = P ⊙ (dP − rowsum(dP ⊙ P)) for P = softmax(S) over the last dimension."""
    return probs * (grad_probs - (grad_probs * probs).sum(-1, keepdim=True))


def split_heads(x: torch.Tensor, n_head: int) -> torch.Tensor:
    """(B x T x E) -> (B x H x T x d), head h holding columns h·d .. (h+1)·d − 1."""
    batch, steps, width = x.shape
    return x.reshape(batch, steps, n_head, width // n_head).transpose(1, 2)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """(B x H x T x d) -> (B x T x E), the inverse of split_heads."""
    batch, heads, steps, size = x.shape
    return x.transpose(1, 2).reshape(batch, steps, heads * size)
