"""GELU's hand backward (grads/gelu.py), both forms: in float64 against autograd of its own
written-out forward and of F.gelu (rtol 1e-8), and in float32 against F.gelu.

float32 against F.gelu, x ~ 3·N(0, 1), measured over 20 seeds on (3 x 5 x 8) and (4 x 64 x 128),
as max rel err: tanh y 2.1e-8, dx 9.8e-7; exact y 1.1e-7, dx 2.4e-7. Tolerance 1e-5.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from handgrad.grads.gelu import GELU_FORMS, gelu_backward, gelu_forward
from helpers.gradient_error import max_rel_err, normal

TORCH_NAME = {"tanh": "tanh", "exact": "none"}  # F.gelu's `approximate`
FLOAT32_RTOL = 1e-5


@pytest.mark.parametrize("form", GELU_FORMS)
def test_hand_backward_equals_autograd_in_float64(form):
    x, dy = 3 * normal(4, 50, seed=0), normal(4, 50, seed=1)
    x.requires_grad_()
    (own,) = torch.autograd.grad(gelu_forward(x, form), x, dy)
    (torchs,) = torch.autograd.grad(F.gelu(x, approximate=TORCH_NAME[form]), x, dy)
    hand = gelu_backward(x.detach(), dy, form)
    assert max_rel_err(hand, own) <= 1e-8
    assert max_rel_err(hand, torchs) <= 1e-8
    assert (
        max_rel_err(
            gelu_forward(x.detach(), form), F.gelu(x.detach(), approximate=TORCH_NAME[form])
        )
        <= 1e-12
    )


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("form", GELU_FORMS)
def test_forward_and_backward_equal_torchs_gelu_in_float32(form, seed):
    x = 3 * normal(4, 64, 128, seed=seed, dtype=torch.float32)
    dy = normal(4, 64, 128, seed=seed + 1, dtype=torch.float32)
    torch_x = x.clone().requires_grad_()
    torch_y = F.gelu(torch_x, approximate=TORCH_NAME[form])
    (auto,) = torch.autograd.grad(torch_y, torch_x, dy)
    assert max_rel_err(gelu_forward(x, form), torch_y) <= FLOAT32_RTOL
    assert max_rel_err(gelu_backward(x, dy, form), auto) <= FLOAT32_RTOL


def test_the_two_forms_differ():
    """They are close but not equal: the form the model names is the one it gets."""
    x = torch.linspace(-4, 4, 81, dtype=torch.float64)
    gap = (gelu_forward(x, "tanh") - gelu_forward(x, "exact")).abs().max().item()
    assert 1e-5 < gap < 1e-2


def test_an_unknown_form_is_refused():
    with pytest.raises(ValueError, match="unknown GELU form 'relu'"):
        gelu_forward(torch.zeros(1), "relu")
    with pytest.raises(ValueError, match="unknown GELU form 'relu'"):
        gelu_backward(torch.zeros(1), torch.zeros(1), "relu")
