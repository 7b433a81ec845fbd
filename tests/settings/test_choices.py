"""The names the settings allow are the ones the code implements: a name added on one side only
is either refused though it works, or accepted and then a KeyError deep in the run."""

from __future__ import annotations

import torch

from handgrad.data.synthetic_regression import make_inputs
from handgrad.grads.activations import ACTIVATIONS
from handgrad.grads.gelu import GELU_FORMS
from handgrad.models.rnn_cells import FUSED_CELLS
from handgrad.settings import data, model


def test_every_activation_name_has_a_function_and_back():
    assert set(model.ACTIVATIONS) == set(ACTIVATIONS)


def test_the_cells_are_the_scratch_one_and_torchs_fused_ones():
    assert set(model.CELLS) == {"scratch", *FUSED_CELLS}


def test_the_gelu_forms_are_the_hand_backwards():
    assert set(model.GELUS) == set(GELU_FORMS)


def test_every_x_generator_makes_inputs():
    gen = torch.Generator().manual_seed(0)
    for kind in data.X_GENERATORS:
        assert make_inputs(kind, 3, 2, gen).shape == (3, 2)
