"""The embeddings' hand backward (grads/embedding.py) against autograd of F.embedding, in float64,
with repeated and unused indices."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from handgrad.grads.embedding import embedding_backward, position_embedding_backward
from helpers.gradient_error import normal


def test_token_embedding_backward_equals_autograd():
    table = normal(7, 4, seed=0).requires_grad_()
    tokens = torch.tensor([[1, 1, 3, 6, 1], [0, 3, 3, 3, 2], [6, 6, 1, 0, 0]])  # 4, 5 unused
    dx = normal(3, 5, 4, seed=1)
    (auto,) = torch.autograd.grad(F.embedding(tokens, table), table, dx)
    hand = embedding_backward(tokens, dx, 7)
    torch.testing.assert_close(hand, auto, rtol=1e-12, atol=1e-15)
    assert hand[4].eq(0).all() and hand[5].eq(0).all()


def test_position_embedding_backward_equals_autograd_and_leaves_unused_rows_0():
    table = normal(8, 4, seed=0).requires_grad_()
    positions = torch.arange(5).expand(3, 5)  # T = 5 of a block of 8
    dx = normal(3, 5, 4, seed=1)
    (auto,) = torch.autograd.grad(F.embedding(positions, table), table, dx)
    hand = position_embedding_backward(dx, 8)
    torch.testing.assert_close(hand, auto, rtol=1e-12, atol=1e-15)
    assert hand[5:].eq(0).all()
