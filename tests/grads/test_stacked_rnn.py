"""Hand BPTT for torch's nn.RNN / nn.GRU / nn.LSTM stacks against autograd, over the whole grid:
cell x layers x input x initial state x dropout, in float64; and against the fused module in
float32. With dropout 0 the reference is autograd through torch's fused module itself; with
dropout it is autograd through the written-out forward, from the same RNG state (same masks)."""

from __future__ import annotations

import pytest
import torch

from handgrad.gradcheck import compare_gradients
from handgrad.models.char_rnn import CharRNN

VOCAB, BATCH, STEPS, HIDDEN, EMBEDDING = 7, 3, 5, 4, 3
CELLS = {"lstm": ("lstm", "tanh"), "gru": ("gru", "tanh"), "rnn-tanh": ("rnn", "tanh")}
CELLS["rnn-relu"] = ("rnn", "relu")


def fused_model(name: str, layers: int, embedding: bool, dropout: float, dtype=torch.float64):
    torch.manual_seed(0)
    cell, activation = CELLS[name]
    model = CharRNN(
        VOCAB,
        cell=cell,
        hidden_size=HIDDEN,
        num_layers=layers,
        dropout=dropout,
        activation=activation,
        embedding_dim=EMBEDDING if embedding else None,
    )
    return model.to(dtype)


def random_batch(seed: int = 0, steps: int = STEPS):
    gen = torch.Generator().manual_seed(seed)
    return tuple(torch.randint(0, VOCAB, (BATCH, steps), generator=gen) for _ in range(2))


def random_state(model: CharRNN, seed: int = 1):
    """A carried state in torch's format: h, or (h, c) for the LSTM (layers x B x H)."""
    gen = torch.Generator().manual_seed(seed)
    shape = (model.net.rnn.num_layers, BATCH, HIDDEN)
    dtype = model.net.head.weight.dtype
    parts = tuple(
        torch.randn(shape, generator=gen, dtype=dtype)
        for _ in range(model.net.time_step.state_size)
    )
    return parts if len(parts) > 1 else parts[0]


def parameter_names(model: CharRNN) -> set[str]:
    return {name for name, _ in model.named_parameters()}


@pytest.mark.parametrize("dropout", [0.0, 0.3])
@pytest.mark.parametrize("carried", [False, True], ids=["zero-state", "carried-state"])
@pytest.mark.parametrize("embedding", [False, True], ids=["one-hot", "embedding"])
@pytest.mark.parametrize("layers", [1, 2, 3])
@pytest.mark.parametrize("name", CELLS)
def test_hand_gradients_equal_autograd_in_float64(name, layers, embedding, carried, dropout):
    model = fused_model(name, layers, embedding, dropout)
    if carried:
        model.epoch.carried_state = random_state(model)
    start = model.epoch.carried_state
    rows = compare_gradients(model, random_batch())
    assert {row.name for row in rows} == {"(loss)"} | parameter_names(model)  # none missing
    bad = [row for row in rows if not row.ok(rtol=1e-8, atol=0.0)]
    assert not bad, bad
    assert model.epoch.carried_state is start  # neither side moves the carried state


@pytest.mark.parametrize("steps", [1, 2])
@pytest.mark.parametrize("name", CELLS)
def test_hand_gradients_equal_autograd_for_one_and_two_steps(name, steps):
    """The shortest sequences: the last step is the first, or the only one before it."""
    model = fused_model(name, 2, embedding=True, dropout=0.0)
    model.epoch.carried_state = random_state(model)
    rows = compare_gradients(model, random_batch(steps=steps))
    bad = [row for row in rows if not row.ok(rtol=1e-8, atol=0.0)]
    assert not bad, bad


@pytest.mark.parametrize("layers", [1, 3])
@pytest.mark.parametrize("name", CELLS)
def test_hand_gradients_equal_the_fused_module_in_float32(name, layers):
    model = fused_model(name, layers, embedding=False, dropout=0.0, dtype=torch.float32)
    model.epoch.carried_state = random_state(model)
    rows = compare_gradients(model, random_batch())
    bad = [row for row in rows if not row.ok(rtol=1e-5, atol=0.0)]
    assert not bad, bad


@pytest.mark.parametrize("carried", [False, True], ids=["zero-state", "carried-state"])
@pytest.mark.parametrize("embedding", [False, True], ids=["one-hot", "embedding"])
@pytest.mark.parametrize("name", CELLS)
def test_the_written_out_forward_is_the_fused_modules(name, embedding, carried):
    model = fused_model(name, 2, embedding, dropout=0.3).eval()  # eval: no dropout
    state = random_state(model) if carried else None
    tokens = random_batch()[0].T
    with torch.no_grad():
        logits, final = model.net(tokens, state)
        traced_logits, traced_final, _ = model.net.trace(tokens, state)
    torch.testing.assert_close(traced_logits, logits, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(traced_final, final, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", CELLS)
def test_dropout_masks_come_from_the_global_rng(name):
    """Masks follow the seed (so a resumed run draws the ones a straight run draws); each layer's
    outputs get one, and it drops something. On CPU they are the fused module's own masks."""
    model = fused_model(name, 3, embedding=False, dropout=0.3)
    tokens = random_batch()[0].T
    traces = []
    for seed in (5, 5, 6):
        torch.manual_seed(seed)
        with torch.no_grad():
            traces.append(model.net.trace(tokens)[2])
    masks = [[layer.mask for layer in trace.layers] for trace in traces]
    assert len(masks[0]) == 3 and all(0 < (mask == 0).double().mean() < 1 for mask in masks[0])
    assert all(torch.equal(a, b) for a, b in zip(masks[0], masks[1], strict=True))
    assert not any(torch.equal(a, b) for a, b in zip(masks[0], masks[2], strict=True))
    torch.manual_seed(5)
    with torch.no_grad():
        fused_logits, _ = model.net(tokens)
        torch.manual_seed(5)
        traced_logits, _, _ = model.net.trace(tokens)
    torch.testing.assert_close(traced_logits, fused_logits, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", CELLS)
def test_the_carried_state_feeds_the_recurrent_gradients(name):
    """H_0 enters step 1: a carried state changes dW_hh of every layer (and still matches)."""
    model = fused_model(name, 2, embedding=False, dropout=0.0)
    batch = random_batch()
    with torch.no_grad():
        _, from_zero, _ = model.hand_loss_and_grads(batch, None)
        _, carried, _ = model.hand_loss_and_grads(batch, random_state(model))
    for layer in range(2):
        key = f"net.rnn.weight_hh_l{layer}"
        assert not torch.allclose(carried[key], from_zero[key]), key
