"""Causal self-attention's hand backward (grads/attention.py): in float64 against autograd of its
own written-out forward, with and without a dropout mask on P, and of torch's
F.scaled_dot_product_attention (rtol 1e-8); in float32 against scaled_dot_product_attention
with is_causal=True.

float32 against scaled_dot_product_attention, measured over 20 seeds on B=3, T=5, E=8 and
B=4, T=64, E=128, 1/2/4 heads, as max rel err: Y 2.5e-7, d(qkv) 8.1e-7. Tolerance 1e-5.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from handgrad.grads.attention import (
    attention_backward,
    attention_forward,
    merge_heads,
    softmax_backward,
    split_heads,
)
from helpers.gradient_error import max_rel_err, normal

BATCH, STEPS, WIDTH = 3, 5, 8
FLOAT32_RTOL = 1e-5


def torch_attention(qkv: torch.Tensor, n_head: int) -> torch.Tensor:
    """Y (B x T x E) through torch's fused kernel."""
    q, k, v = (split_heads(part, n_head) for part in qkv.chunk(3, dim=-1))
    return merge_heads(F.scaled_dot_product_attention(q, k, v, is_causal=True))


def dropout_mask(n_head: int) -> torch.Tensor:
    """Entries 0 or 1/(1 − p), p = 0.3, as F.dropout makes them."""
    gen = torch.Generator().manual_seed(5)
    keep = torch.rand(BATCH, n_head, STEPS, STEPS, generator=gen, dtype=torch.float64) > 0.3
    return keep / 0.7


@pytest.mark.parametrize("dropout", [False, True])
@pytest.mark.parametrize("n_head", [1, 2, 4])
def test_hand_backward_equals_autograd_of_the_written_out_forward_in_float64(n_head, dropout):
    qkv, dy = normal(BATCH, STEPS, 3 * WIDTH, seed=0), normal(BATCH, STEPS, WIDTH, seed=1)
    mask = dropout_mask(n_head) if dropout else None
    y, tape = attention_forward(qkv.requires_grad_(), n_head, mask)
    (auto,) = torch.autograd.grad(y, qkv, dy)
    with torch.no_grad():
        assert max_rel_err(attention_backward(dy, tape), auto) <= 1e-8


@pytest.mark.parametrize("n_head", [1, 2, 4])
def test_forward_and_backward_equal_scaled_dot_product_attention_in_float64(n_head):
    qkv, dy = normal(BATCH, STEPS, 3 * WIDTH, seed=0), normal(BATCH, STEPS, WIDTH, seed=1)
    qkv.requires_grad_()
    torch_y = torch_attention(qkv, n_head)
    (auto,) = torch.autograd.grad(torch_y, qkv, dy)
    with torch.no_grad():
        y, tape = attention_forward(qkv, n_head)
        assert max_rel_err(y, torch_y) <= 1e-12
        assert max_rel_err(attention_backward(dy, tape), auto) <= 1e-8


@pytest.mark.parametrize("n_head", [1, 2, 4])
@pytest.mark.parametrize("shape", [(3, 5, 8), (4, 64, 128)])
def test_forward_and_backward_equal_scaled_dot_product_attention_in_float32(shape, n_head):
    batch, steps, width = shape
    qkv = normal(batch, steps, 3 * width, seed=0, dtype=torch.float32)
    dy = normal(batch, steps, width, seed=1, dtype=torch.float32)
    torch_qkv = qkv.clone().requires_grad_()
    torch_y = torch_attention(torch_qkv, n_head)
    (auto,) = torch.autograd.grad(torch_y, torch_qkv, dy)
    y, tape = attention_forward(qkv, n_head)
    assert max_rel_err(y, torch_y) <= FLOAT32_RTOL
    assert max_rel_err(attention_backward(dy, tape), auto) <= FLOAT32_RTOL


def test_no_position_attends_to_a_later_one():
    _, tape = attention_forward(normal(BATCH, STEPS, 3 * WIDTH, seed=0), 2)
    future = torch.ones(STEPS, STEPS, dtype=torch.bool).triu(1)
    assert tape.probs[..., future].eq(0).all()
    torch.testing.assert_close(tape.probs.sum(-1), torch.ones(BATCH, 2, STEPS, dtype=torch.float64))


def test_softmax_backward_equals_autograd_and_is_0_where_p_is_0():
    scores = normal(4, 6, seed=0)
    scores[:, 4:] = -torch.inf  # masked, as the causal mask does
    grad_probs = normal(4, 6, seed=1)
    scores.requires_grad_()
    probs = scores.softmax(-1)
    (auto,) = torch.autograd.grad(probs, scores, grad_probs)
    hand = softmax_backward(probs.detach(), grad_probs)
    assert max_rel_err(hand, auto) <= 1e-12
    assert hand[:, 4:].eq(0).all()
