"""LayerNorm's hand backward (grads/layernorm.py): in float64 against autograd of its own
written-out forward (rtol 1e-8), and in float32 against autograd through torch's F.layer_norm.

float32 against F.layer_norm, measured over 20 seeds on (3 x 5 x 8) and (4 x 64 x 128), as max
rel err (gradcheck's measure): y 2.0e-7, dx 7.6e-7, dγ 6.3e-7, dβ 7.4e-7 (dβ = Σ dy, the same sum
in another order). Tolerance 1e-5: over 10x the worst seen, far below a wrong term's error.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from handgrad.grads.layernorm import layernorm_backward, layernorm_forward
from helpers.gradient_error import max_rel_err, normal

EPS = 1e-5
FLOAT32_RTOL = 1e-5


def inputs(shape: tuple[int, ...], seed: int, dtype: torch.dtype):
    """x, γ (around 1), β, dy: γ ≠ 1 and β ≠ 0, so a missing γ or β shows."""
    width = shape[-1]
    x, dy = normal(*shape, seed=seed, dtype=dtype), normal(*shape, seed=seed + 1, dtype=dtype)
    weight = 1 + 0.5 * normal(width, seed=seed + 2, dtype=dtype)
    return x, weight, normal(width, seed=seed + 3, dtype=dtype), dy


@pytest.mark.parametrize("with_bias", [True, False])
@pytest.mark.parametrize("shape", [(3, 5, 8), (4, 1), (2, 16)])
def test_hand_backward_equals_autograd_of_the_written_out_forward_in_float64(shape, with_bias):
    x, weight, bias, dy = inputs(shape, seed=0, dtype=torch.float64)
    bias = bias if with_bias else None
    leaves = [t.requires_grad_() for t in (x, weight, bias) if t is not None]
    y, normed, rstd = layernorm_forward(x, weight, bias, EPS)
    auto = torch.autograd.grad(y, leaves, dy)
    with torch.no_grad():
        hand = layernorm_backward(dy, normed, rstd, weight)
    for h, a in zip(hand, auto, strict=False):  # no bias: dβ is computed, not compared
        assert max_rel_err(h, a) <= 1e-8


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("shape", [(3, 5, 8), (4, 64, 128)])
def test_forward_and_backward_equal_torchs_layer_norm_in_float32(shape, seed):
    x, weight, bias, dy = inputs(shape, seed, torch.float32)
    y, normed, rstd = layernorm_forward(x, weight, bias, EPS)
    hand = layernorm_backward(dy, normed, rstd, weight)
    leaves = [t.clone().requires_grad_() for t in (x, weight, bias)]
    torch_y = F.layer_norm(leaves[0], shape[-1:], *leaves[1:], EPS)
    auto = torch.autograd.grad(torch_y, leaves, dy)
    assert max_rel_err(y, torch_y) <= FLOAT32_RTOL
    for h, a in zip(hand, auto, strict=True):
        assert max_rel_err(h, a) <= FLOAT32_RTOL


def test_each_row_is_normalized_to_mean_0_and_variance_1():
    _, normed, rstd = layernorm_forward(normal(4, 16, seed=0), torch.ones(16), None, EPS)
    torch.testing.assert_close(normed.mean(-1), torch.zeros(4, dtype=torch.float64))
    torch.testing.assert_close(normed.var(-1, unbiased=False), (1 - EPS * rstd.squeeze(-1) ** 2))
    assert rstd.shape == (4, 1)
