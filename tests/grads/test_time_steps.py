"""Each recurrent step's hand backward is the chain rule of its own forward, one step alone."""

from __future__ import annotations

import pytest
import torch

from handgrad.grads.stacked_rnn import time_step

# HIDDEN 5: wider than the gate count, so slicing A into the wrong number of gates shows.
BATCH, HIDDEN = 3, 5
GATES = {"lstm": 4, "gru": 3, "rnn": 1}
STEPS = {"lstm": ("lstm", "tanh"), "gru": ("gru", "tanh"), "rnn-tanh": ("rnn", "tanh")}
STEPS["rnn-relu"] = ("rnn", "relu")


def leaf(*shape: int, gen: torch.Generator) -> torch.Tensor:
    return torch.randn(*shape, generator=gen, dtype=torch.float64).requires_grad_()


@pytest.mark.parametrize("name", STEPS)
def test_step_backward_is_the_vector_jacobian_product_of_its_forward(name):
    cell, activation = STEPS[name]
    step = time_step(cell, activation)
    gen = torch.Generator().manual_seed(0)
    size = GATES[cell] * HIDDEN
    inputs, W_hh, b_hh = (
        leaf(BATCH, size, gen=gen),
        leaf(size, HIDDEN, gen=gen),
        leaf(size, gen=gen),
    )
    state = tuple(leaf(BATCH, HIDDEN, gen=gen) for _ in range(step.state_size))
    new_state, saved = step.forward(inputs, state, W_hh, b_hh)
    grad_state = tuple(
        torch.randn(BATCH, HIDDEN, generator=gen, dtype=torch.float64) for _ in state
    )
    # autograd's vector-Jacobian product: d(sum of grad_state ⊙ new_state) / d(everything in)
    pulled = sum((g * s).sum() for g, s in zip(grad_state, new_state, strict=True))
    auto = torch.autograd.grad(pulled, [inputs, W_hh, b_hh, *state])
    with torch.no_grad():
        grad_p, grad_q, grad_prev = step.backward(grad_state, saved, W_hh)
        hand = [grad_p, grad_q.T @ state[0], grad_q.sum(0), *grad_prev]  # dQ -> dW_hh, db_hh
    names = ["P_t", "W_hh", "b_hh", "H_{t-1}", "C_{t-1}"][: 3 + step.state_size]
    for what, h, a in zip(names, hand, auto, strict=True):
        torch.testing.assert_close(h, a, rtol=1e-12, atol=1e-14, msg=f"{name}: d{what}")


def test_relu_step_clips_some_units():
    """The relu case only tests the mask if some units are off and some on."""
    step = time_step("rnn", "relu")
    gen = torch.Generator().manual_seed(0)
    inputs, W_hh, b_hh = (
        leaf(BATCH, HIDDEN, gen=gen),
        leaf(HIDDEN, HIDDEN, gen=gen),
        leaf(HIDDEN, gen=gen),
    )
    (h,), _ = step.forward(inputs, (leaf(BATCH, HIDDEN, gen=gen),), W_hh, b_hh)
    assert 0 < (h == 0).double().mean() < 1
