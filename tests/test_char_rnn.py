"""The char-RNN: hand BPTT against autograd, carried state, a tiny training run, checkpoints."""

from __future__ import annotations

import pytest
import torch

from handgrad.errors import ConfigError
from handgrad.models.char_rnn import CharRNN


def scratch_rnn(vocab_size: int, hidden_size: int, activation: str) -> CharRNN:
    # A larger init than the default 0.01 so every gradient (and the relu mask) is far from zero.
    model = CharRNN(
        vocab_size, cell="scratch", hidden_size=hidden_size, activation=activation, init_std=0.5
    )
    return model.double()


def random_batch(batch: int, steps: int, vocab_size: int, seed: int):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randint(0, vocab_size, (batch, steps), generator=gen)
    y = torch.randint(0, vocab_size, (batch, steps), generator=gen)
    return x, y


def autograd_and_hand(model: CharRNN, batch):
    params = dict(model.named_parameters())
    loss = model.training_loss(batch)
    auto = dict(zip(params, torch.autograd.grad(loss, list(params.values())), strict=True))
    with torch.no_grad():
        hand_loss, hand = model.hand_loss_and_grads(batch)
    return loss.detach(), auto, hand_loss, hand


@pytest.mark.parametrize("activation", ["tanh", "relu"])
@pytest.mark.parametrize(
    ("steps", "batch", "hidden", "vocab"), [(1, 1, 1, 2), (7, 3, 5, 11), (20, 4, 8, 28)]
)
@pytest.mark.parametrize("carried", [False, True])
def test_hand_bptt_equals_autograd(activation, steps, batch, hidden, vocab, carried):
    model = scratch_rnn(vocab, hidden, activation)
    data = random_batch(batch, steps, vocab, seed=steps)
    if carried:
        model.train_state = torch.randn(batch, hidden, dtype=torch.float64)
    before = None if model.train_state is None else model.train_state.clone()
    loss, auto, hand_loss, hand = autograd_and_hand(model, data)
    torch.testing.assert_close(hand_loss, loss, rtol=1e-12, atol=0)
    assert hand.keys() == auto.keys() == {"net.W_xh", "net.W_hh", "net.b_h", "net.W_hq", "net.b_q"}
    for name in auto:
        torch.testing.assert_close(hand[name], auto[name], rtol=1e-10, atol=1e-14, msg=name)
    # Neither side moved the carried state: a gradient check sees the same start in both.
    if carried:
        torch.testing.assert_close(model.train_state, before, rtol=0, atol=0)
    else:
        assert model.train_state is None


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_carried_state_feeds_W_hh_gradient(activation):
    """H_0 W_hh is part of A_1: a nonzero carried state changes dW_hh, and it matches autograd."""
    model = scratch_rnn(6, 4, activation)
    data = random_batch(2, 3, 6, seed=0)
    _, _, _, from_zero = autograd_and_hand(model, data)
    model.train_state = torch.ones(2, 4, dtype=torch.float64)
    _, auto, _, carried = autograd_and_hand(model, data)
    assert not torch.allclose(carried["net.W_hh"], from_zero["net.W_hh"])
    torch.testing.assert_close(carried["net.W_hh"], auto["net.W_hh"], rtol=1e-10, atol=1e-14)


def test_relu_mask_is_exercised():
    """The relu case is only a test if some units are off: check the cell really clips."""
    model = scratch_rnn(11, 5, "relu")
    x, _ = random_batch(3, 7, 11, seed=7)
    hiddens = model.net.hidden_states(x.T, model.net.zero_state(3))
    assert 0 < (hiddens == 0).double().mean() < 1


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"cell": "lstm", "backward": "hand"}, "model.backward=hand needs model.cell=scratch"),
        ({"cell": "gru", "activation": "relu"}, "model.activation=relu needs model.cell=scratch"),
        ({"cell": "transformer"}, "model.cell='transformer' is not one of scratch, rnn, gru, lstm"),
        ({"cell": "scratch", "num_layers": 2}, "model.cell=scratch is one layer"),
    ],
)
def test_config_mistakes_are_clear(overrides, message):
    with pytest.raises(ConfigError, match=message):
        CharRNN(28, **overrides)


@pytest.mark.parametrize("cell", ["scratch", "rnn", "gru", "lstm"])
def test_every_cell_maps_tokens_to_logits_and_a_state_it_accepts(cell):
    model = CharRNN(28, cell=cell, hidden_size=8, num_layers=1 if cell == "scratch" else 2)
    tokens = torch.randint(0, 28, (5, 3))
    logits, state = model(tokens)
    assert logits.shape == (5, 3, 28)
    logits_again, _ = model(tokens[:2], state)
    assert logits_again.shape == (2, 3, 28)
