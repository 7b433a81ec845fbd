"""The models' forward code on its own: the initial weights, what a checkpoint's hyperparameters
hold, the fused cells' dropout and carried state, and the char-RNN's gradient check reference."""

from __future__ import annotations

import warnings
from functools import partial

import pytest
import torch

from handgrad.gradcheck import compare_gradients
from handgrad.models.char_rnn import CharRNN, ScratchRNN
from handgrad.models.linear import LinearRegression
from handgrad.models.mlp import MLP


def test_weights_start_normal_with_init_std_and_biases_at_zero():
    torch.manual_seed(0)
    linear = LinearRegression(1000, 10, init_std=0.5)
    scratch = ScratchRNN(200, 100, "tanh", init_std=0.5)
    for weight in (linear.w, scratch.W_xh, scratch.W_hh, scratch.W_hq):
        assert weight.mean().item() == pytest.approx(0.0, abs=0.03)
        assert weight.std().item() == pytest.approx(0.5, rel=0.03)
    assert not any(bias.any() for bias in (linear.b, scratch.b_h, scratch.b_q))


@pytest.mark.parametrize("model", [LinearRegression, MLP])
def test_the_optimizer_and_scheduler_stay_out_of_the_hyperparameters(model):
    """They are objects (partials of classes): in a checkpoint they would need pickle."""
    built = model(optimizer=partial(torch.optim.SGD, lr=0.1), scheduler=None)
    assert {"optimizer", "scheduler"}.isdisjoint(built.hparams)


@pytest.mark.parametrize("layers", [1, 2, 3])
def test_fused_cells_drop_out_between_layers_and_torch_has_nothing_to_warn(layers):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch warns of dropout on a one-layer module
        model = CharRNN(28, cell="lstm", hidden_size=8, num_layers=layers, dropout=0.3)
    assert model.net.rnn.dropout == (0.3 if layers > 1 else 0.0)
    assert model.net.output_dropout.p == 0.3


def test_a_carried_state_for_another_number_of_layers_is_refused():
    """As torch's own module refuses it, the written-out forward never drops a layer's state."""
    net = CharRNN(28, cell="lstm", hidden_size=8, num_layers=2).net
    tokens = torch.zeros(5, 3, dtype=torch.long)
    h, c = net.zero_state(3)
    for state in [(h[:1], c[:1]), (h, c[:1]), (torch.cat([h, h[:1]]), torch.cat([c, c[:1]]))]:
        with pytest.raises(ValueError):
            net.trace(tokens, state)


def test_the_scratch_cells_gradient_check_passes():
    """The scratch cell's reference loss is its training loss (no dropout to draw alike)."""
    torch.manual_seed(0)
    model = CharRNN(7, cell="scratch", hidden_size=4, init_std=0.5).double()
    gen = torch.Generator().manual_seed(0)
    batch = tuple(torch.randint(0, 7, (3, 5), generator=gen) for _ in "xy")
    assert all(row.ok(rtol=1e-10, atol=0.0) for row in compare_gradients(model, batch))
