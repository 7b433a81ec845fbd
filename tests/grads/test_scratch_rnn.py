"""The scratch cell's hand BPTT on its own: autograd's gradients of the same forward, for the
shortest sequences (1, 2 and 3 steps: the first step and the carried H_0 are special cases),
and on the meta device (gradients are made where the inputs live)."""

from __future__ import annotations

import pytest
import torch

from handgrad.grads.scratch_rnn import rnn_backward
from handgrad.models.char_rnn import ScratchRNN

VOCAB, BATCH, HIDDEN = 6, 3, 4


def cell(activation: str) -> ScratchRNN:
    torch.manual_seed(0)
    return ScratchRNN(VOCAB, HIDDEN, activation, init_std=0.5).double()


def hand_grads(net: ScratchRNN, tokens, h0, grad_logits) -> dict[str, torch.Tensor]:
    with torch.no_grad():
        hiddens = net.hidden_states(tokens, h0)
        return rnn_backward(tokens, h0, hiddens, grad_logits, net.W_hh, net.W_hq, net.activation)


@pytest.mark.parametrize("steps", [1, 2, 3])
@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_hand_bptt_is_autograds_for_short_sequences(activation, steps):
    net = cell(activation)
    gen = torch.Generator().manual_seed(steps)
    tokens = torch.randint(0, VOCAB, (steps, BATCH), generator=gen)
    h0 = torch.randn(BATCH, HIDDEN, generator=gen, dtype=torch.float64)
    grad_logits = torch.randn(steps, BATCH, VOCAB, generator=gen, dtype=torch.float64)
    logits, _, _ = net.trace(tokens, h0)
    params = dict(net.named_parameters())
    auto = torch.autograd.grad(logits, list(params.values()), grad_logits)
    hand = hand_grads(net, tokens, h0, grad_logits)
    assert hand.keys() == params.keys()
    for name, grad in zip(params, auto, strict=True):
        torch.testing.assert_close(hand[name], grad, rtol=1e-12, atol=1e-14, msg=name)


def test_gradients_are_made_on_the_inputs_device():
    """The meta device stands in for a GPU: a gradient allocated on the default device fails."""
    net = cell("tanh").to("meta")
    tokens = torch.zeros(2, BATCH, dtype=torch.long, device="meta")
    h0 = torch.zeros(BATCH, HIDDEN, dtype=torch.float64, device="meta")
    grad_logits = torch.zeros(2, BATCH, VOCAB, dtype=torch.float64, device="meta")
    grads = hand_grads(net, tokens, h0, grad_logits)
    assert {grad.device.type for grad in grads.values()} == {"meta"}
