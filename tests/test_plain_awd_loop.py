"""The benchmark's plain-PyTorch loop of the AWD-LSTM recipe (`benchmarks/plain_loops.py`'s
PlainAWDRNN) is the project's recipe: from one seed it starts from the project's weights, and from
one RNG state its training forward draws the project's masks and computes the project's logits
and state; `plain_char_rnn` trains it when a spec sets the recipe's keys."""

from __future__ import annotations

import math

import pytest
import torch

from benchmarks.plain_loops import PlainAWDRNN, plain_char_rnn
from handgrad.models.rnn_cells import FusedRNN

VOCAB, HIDDEN, EMBEDDING, LAYERS = 11, 6, 5, 3


def both(cell: str, kind: str, embedding_dim: int | None = EMBEDDING):
    """(plain, project) networks, each built from seed 0."""
    activation = "relu" if cell == "rnn" else "tanh"
    keys = (embedding_dim, 0.3, kind, 0.2 if embedding_dim else 0.0)
    torch.manual_seed(0)
    plain = PlainAWDRNN(cell, VOCAB, HIDDEN, activation, LAYERS, 0.25, *keys)
    torch.manual_seed(0)
    project = FusedRNN(cell, VOCAB, HIDDEN, LAYERS, 0.25, activation, *keys)
    return plain, project


def project_names(name: str) -> str:
    """layers.k.weight_hh_l0 -> rnn.weight_hh_lk; embedding and head names are the same."""
    if not name.startswith("layers."):
        return name
    _, k, param = name.split(".")
    return f"rnn.{param.removesuffix('_l0')}_l{k}"


@pytest.mark.parametrize("embedding", [True, False], ids=["embedding", "one-hot"])
@pytest.mark.parametrize("kind", ["standard", "locked"])
@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_the_plain_awd_network_is_the_projects(cell, kind, embedding):
    plain, project = both(cell, kind, EMBEDDING if embedding else None)
    theirs = dict(project.named_parameters())
    mine = {project_names(name): p for name, p in plain.named_parameters()}
    assert mine.keys() == theirs.keys()
    for name, weight in mine.items():
        assert torch.equal(weight, theirs[name]), name
    gen = torch.Generator().manual_seed(1)
    tokens = torch.randint(0, VOCAB, (7, 4), generator=gen)
    state = project.zero_state(4)
    state = tuple(torch.randn_like(s) for s in state) if isinstance(state, tuple) else state + 1
    with torch.no_grad():
        torch.manual_seed(3)
        logits, final = plain(tokens, state)
        after_plain = torch.get_rng_state()
        torch.manual_seed(3)
        expected_logits, expected_final = project(tokens, state)
        assert torch.equal(torch.get_rng_state(), after_plain)  # the same draws
    torch.testing.assert_close(logits, expected_logits, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(final, expected_final, rtol=1e-6, atol=1e-7)


def test_a_spec_with_the_recipes_keys_trains_the_awd_network(time_machine):
    spec = {
        "corpus": str(time_machine), "split": "holdout", "sampling": "sequential",
        "batch_size": 8, "num_steps": 8, "val_fraction": 0.1, "max_tokens": 2000,
        "cell": "lstm", "hidden_size": 16, "activation": "tanh", "init_std": 0.01,
        "num_layers": 2, "dropout": 0.3, "embedding_dim": 8, "weight_drop": 0.3,
        "dropout_kind": "locked", "embedding_dropout": 0.1, "optimizer": "Adam",
        "optimizer_kwargs": {"lr": 0.01}, "epochs": 2, "val_every": 1, "clip": 1.0,
    }  # fmt: skip
    torch.manual_seed(0)
    result = plain_char_rnn(spec)
    assert result["steps"] > 0 and math.isfinite(result["train_loss"])
    assert 1 < result["val_ppl"] < 28
