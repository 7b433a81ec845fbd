"""Hand BPTT for torch's nn.RNN / nn.GRU / nn.LSTM stacks against autograd, over the whole grid:
cell x layers x input x initial state x dropout, in float64; and against the fused module in
float32. With dropout 0 the reference is autograd through torch's fused module itself; with
dropout it is autograd through the written-out forward, from the same RNG state (same masks).

AWD-LSTM's regularisers (grads/rnn_dropout.py) over cell x layers x input (one-hot, embedding,
embedding with embedding dropout) x weight drop x dropout kind: hand against autograd through the
written-out forward and through torch's fused kernels (the training path), the fused forward
against the written-out one from the same RNG state, the masks' order, shapes and sharing."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from handgrad.gradcheck import compare_gradients
from handgrad.models.char_rnn import CharRNN

VOCAB, BATCH, STEPS, HIDDEN, EMBEDDING = 7, 3, 5, 4, 3
CELLS = {"lstm": ("lstm", "tanh"), "gru": ("gru", "tanh"), "rnn-tanh": ("rnn", "tanh")}
CELLS["rnn-relu"] = ("rnn", "relu")


def fused_model(
    name: str, layers: int, embedding: bool, dropout: float, dtype=torch.float64, **awd
):
    """`awd`: weight_drop, dropout_kind, embedding_dropout (the defaults keep them off)."""
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
        **awd,
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


# --- AWD-LSTM's regularisers: weight drop, locked dropout, embedding dropout --------------------
INPUTS = {"one-hot": (False, 0.0), "embedding": (True, 0.0), "embedding-dropout": (True, 0.2)}


def awd_model(name: str, layers: int, inputs: str, weight_drop: float, kind: str, **kw):
    embedding, embedding_dropout = INPUTS[inputs]
    return fused_model(
        name, layers, embedding, 0.3, weight_drop=weight_drop, dropout_kind=kind,
        embedding_dropout=embedding_dropout, **kw,
    )  # fmt: skip


@pytest.mark.parametrize("kind", ["standard", "locked"])
@pytest.mark.parametrize("weight_drop", [0.0, 0.3], ids=["no-weight-drop", "weight-drop"])
@pytest.mark.parametrize("inputs", INPUTS)
@pytest.mark.parametrize("layers", [1, 2, 3])
@pytest.mark.parametrize("name", CELLS)
def test_awd_hand_gradients_equal_autograd_in_float64(name, layers, inputs, weight_drop, kind):
    """Against autograd through the written-out forward from the same RNG state: the gradient
    check's own reference (`CharRNN.reference_loss`), with a carried state."""
    model = awd_model(name, layers, inputs, weight_drop, kind)
    model.epoch.carried_state = random_state(model)
    assert model.net.dropout_is_on()
    rows = compare_gradients(model, random_batch())
    assert {row.name for row in rows} == {"(loss)"} | parameter_names(model)
    bad = [row for row in rows if not row.ok(rtol=1e-8, atol=0.0)]
    assert not bad, bad


def fused_and_hand(model: CharRNN, batch, state, seed: int = 11):
    """(loss, grads) by autograd through `model.loss` (torch's fused kernels: the autograd
    training path) and by the hand pass, each from RNG state `seed`."""
    params = dict(model.named_parameters())
    torch.manual_seed(seed)
    loss, _ = model.loss(batch, state)
    auto = dict(zip(params, torch.autograd.grad(loss, list(params.values())), strict=True))
    torch.manual_seed(seed)
    with torch.no_grad():
        hand_loss, hand, _ = model.hand_loss_and_grads(batch, state)
    return (loss.detach(), auto), (hand_loss, hand)


@pytest.mark.parametrize("kind", ["standard", "locked"])
@pytest.mark.parametrize("layers", [1, 3])
@pytest.mark.parametrize("name", CELLS)
def test_hand_gradients_equal_autograd_through_the_fused_kernels(name, layers, kind):
    """On CPU the fused path draws the written-out forward's masks, so the hand gradients are
    autograd's of the very loss autograd mode trains (weight drop's mask included)."""
    model = awd_model(name, layers, "embedding-dropout", 0.3, kind)
    (loss, auto), (hand_loss, hand) = fused_and_hand(model, random_batch(), random_state(model))
    torch.testing.assert_close(hand_loss, loss, rtol=1e-12, atol=0.0)
    assert hand.keys() == auto.keys()
    for key in auto:
        torch.testing.assert_close(hand[key], auto[key], rtol=1e-8, atol=1e-12, msg=key)


def training_forwards(model: CharRNN, tokens, state, seed: int = 5):
    """(logits, final state) of the fused forward and of `trace`, each from RNG state `seed`."""
    with torch.no_grad():
        torch.manual_seed(seed)
        fused = model.net(tokens, state)
        torch.manual_seed(seed)
        traced = model.net.trace(tokens, state)[:2]
    return fused, traced


@pytest.mark.parametrize("kind", ["standard", "locked"])
@pytest.mark.parametrize("weight_drop", [0.0, 0.3], ids=["no-weight-drop", "weight-drop"])
@pytest.mark.parametrize("inputs", INPUTS)
@pytest.mark.parametrize("name", CELLS)
def test_the_fused_forward_is_the_written_out_one_with_the_same_masks(
    name, inputs, weight_drop, kind
):
    model = awd_model(name, 2, inputs, weight_drop, kind)
    state = random_state(model)
    (logits, final), (traced_logits, traced_final) = training_forwards(
        model, random_batch()[0].T, state
    )
    torch.testing.assert_close(traced_logits, logits, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(traced_final, final, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", CELLS)
def test_the_fused_forward_with_weight_drop_is_the_written_out_one_in_float32(name):
    model = awd_model(name, 3, "embedding-dropout", 0.3, "locked", dtype=torch.float32)
    (logits, final), (traced_logits, traced_final) = training_forwards(
        model, random_batch()[0].T, random_state(model)
    )
    torch.testing.assert_close(traced_logits, logits, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(traced_final, final, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", ["standard", "locked"])
@pytest.mark.parametrize("name", CELLS)
def test_masks_are_drawn_in_the_documented_order(name, kind):
    """`FusedRNN.trace`'s order: the embedding's row mask, then per layer its W_hh mask and its
    outputs' mask, each as F.dropout draws it. Weight drop: one (kH x H) mask for all steps;
    locked: one (1 x B x H) per sequence; embedding dropout: one (V x 1) per token id."""
    model = awd_model(name, 3, "embedding-dropout", 0.3, kind)
    tokens = random_batch()[0].T
    torch.manual_seed(7)
    with torch.no_grad():
        tape = model.net.trace(tokens)[2]
    torch.manual_seed(7)
    expected = [F.dropout(torch.ones(VOCAB, 1, dtype=torch.float64), 0.2)]
    got = [tape.embedding_mask]
    outputs_shape = (1, BATCH, HIDDEN) if kind == "locked" else (STEPS, BATCH, HIDDEN)
    for layer, (_, W_hh, _, _) in zip(tape.layers, model.net.rnn.all_weights, strict=True):
        expected.append(F.dropout(torch.ones_like(W_hh), 0.3))
        expected.append(F.dropout(torch.ones(outputs_shape, dtype=torch.float64), 0.3))
        got += [layer.hh_mask, layer.mask]
    for mask, want in zip(got, expected, strict=True):
        assert mask.shape == want.shape and torch.equal(mask, want)
        assert 0 < (mask == 0).double().mean() < 1  # each drops something, keeps something


def test_locked_dropout_drops_a_unit_for_every_step_of_its_sequence():
    """The head's inputs (the last layer's outputs, dropped out): zero at the same (row, unit)
    at every step; standard dropout's zeros move from step to step."""
    for kind, shared in (("locked", True), ("standard", False)):
        model = awd_model("lstm", 2, "embedding", 0.0, kind)
        torch.manual_seed(3)
        with torch.no_grad():
            head_inputs = model.net.trace(random_batch()[0].T)[2].head_inputs
        zeros = head_inputs == 0
        assert zeros.any()
        assert bool((zeros == zeros[0]).all()) == shared, kind


def test_embedding_dropout_drops_every_occurrence_of_a_character():
    """Row v of E ⊙ m: zero for a dropped id wherever it occurs, E[v] / (1 - p) where kept."""
    model = awd_model("gru", 1, "embedding-dropout", 0.0, "standard")
    tokens = torch.arange(STEPS * BATCH).reshape(STEPS, BATCH) % VOCAB  # every id occurs
    torch.manual_seed(2)
    with torch.no_grad():
        tape = model.net.trace(tokens)[2]
    kept = tape.embedding_mask[:, 0] != 0
    assert kept.any() and not kept.all()
    inputs, table = tape.layers[0].inputs, model.net.embedding.weight
    expected = torch.where(kept.unsqueeze(1), table / 0.8, torch.zeros_like(table))
    torch.testing.assert_close(inputs, expected[tokens], rtol=1e-15, atol=0.0)


@pytest.mark.parametrize("name", CELLS)
def test_weight_drop_runs_torchs_module_on_the_dropped_matrix(name):
    """The fused forward is torch's own module with weight_hh_l{k} replaced by W_hh ⊙ M_w (the
    trace's masks, one for every time step), its outputs times the trace's dropout masks."""
    model = awd_model(name, 2, "one-hot", 0.5, "locked")
    tokens = random_batch()[0].T
    torch.manual_seed(9)
    with torch.no_grad():
        logits, _ = model.net(tokens)
    torch.manual_seed(9)
    with torch.no_grad():
        tape = model.net.trace(tokens)[2]
    rnn = model.net.rnn
    extra = {"nonlinearity": rnn.nonlinearity} if isinstance(rnn, torch.nn.RNN) else {}
    inputs = F.one_hot(tokens, VOCAB).double()
    for layer, record in enumerate(tape.layers):
        W_ih, W_hh, b_ih, b_hh = rnn.all_weights[layer]
        one_layer = type(rnn)(inputs.shape[-1], HIDDEN, 1, **extra).double()
        weights = {"weight_ih_l0": W_ih, "weight_hh_l0": W_hh * record.hh_mask}
        weights |= {"bias_ih_l0": b_ih, "bias_hh_l0": b_hh}
        with torch.no_grad():
            outputs, _ = torch.func.functional_call(one_layer, weights, (inputs,))
        inputs = outputs * record.mask
    with torch.no_grad():
        expected = model.net.head(inputs)
    torch.testing.assert_close(logits, expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("inputs", INPUTS)
def test_in_eval_mode_nothing_is_drawn_and_torchs_module_runs(inputs):
    model = awd_model("lstm", 2, inputs, 0.3, "locked").eval()
    tokens = random_batch()[0].T
    before = torch.get_rng_state()
    with torch.no_grad():
        logits, _ = model.net(tokens)
        traced = model.net.trace(tokens)
    assert torch.equal(torch.get_rng_state(), before)
    assert not model.net.dropout_is_on()
    assert traced[2].embedding_mask is None
    assert all(layer.mask is None and layer.hh_mask is None for layer in traced[2].layers)
    torch.testing.assert_close(traced[0], logits, rtol=1e-12, atol=1e-14)


def test_the_keys_keep_torchs_parameter_names():
    """No parameter or buffer of their own: a checkpoint loads with the keys on or off."""
    plain = fused_model("lstm", 2, True, 0.3)
    awd = awd_model("lstm", 2, "embedding-dropout", 0.3, "locked")
    assert list(awd.state_dict()) == list(plain.state_dict())
    awd.load_state_dict(plain.state_dict())  # strict
