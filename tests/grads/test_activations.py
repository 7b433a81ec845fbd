"""The activations' slopes f'(Z), written through A = f(Z), against autograd's derivative of f."""

from __future__ import annotations

import pytest
import torch

from handgrad.grads.activations import ACTIVATIONS, activation_backward, activation_slope


def inputs() -> torch.Tensor:
    """Z on both sides of 0 (relu's kink is never hit: its slope there is a convention)."""
    gen = torch.Generator().manual_seed(0)
    return 3 * torch.randn(4, 5, generator=gen, dtype=torch.float64)


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_slope_and_backward_equal_autograds_derivative(name):
    z = inputs().requires_grad_()
    a = ACTIVATIONS[name](z)
    grad_a = torch.randn(a.shape, generator=torch.Generator().manual_seed(1), dtype=a.dtype)
    (auto,) = torch.autograd.grad(a, z, grad_a)
    slope = activation_slope(name, a.detach())
    torch.testing.assert_close(grad_a * slope, auto, rtol=1e-12, atol=1e-15)
    hand = activation_backward(name, a.detach(), grad_a)
    assert hand.dtype == auto.dtype
    torch.testing.assert_close(hand, auto, rtol=1e-12, atol=1e-15)


def test_relu_slope_is_0_and_1_in_the_outputs_dtype():
    a = torch.relu(inputs())
    slope = activation_slope("relu", a)
    assert slope.dtype == torch.float64
    assert set(slope.unique().tolist()) == {0.0, 1.0}


def test_identity_slope_is_1():
    assert activation_slope("identity", inputs()) == 1.0


def test_an_unknown_activation_is_an_error_naming_the_known_ones():
    with pytest.raises(ValueError) as error:
        activation_slope("swish", inputs())
    assert str(error.value) == "unknown activation 'swish'; known: relu, sigmoid, tanh, identity"
