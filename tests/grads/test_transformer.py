"""The Transformer's hand backward (models/transformer.py, grads/transformer_stack.py) against
autograd, with the mean cross-entropy's gradient (grads/cross_entropy.py) as dL/dlogits.

- float64, dropout 0, against autograd of `forward` (torch's modules and kernels), rtol 1e-8, for
  every bias x tie_weights x gelu x n_layer 1-3 x n_head 1/2/4;
- float64 with dropout, against autograd of `trace`'s written-out forward from the same RNG state
  (the same masks: `forward`'s fused attention draws its own);
- float32 against autograd of `forward`. Measured over 5 seeds x bias x tie_weights x gelu, B=3
  and B=4, as max rel err: V=7, T=5, E=8, 2 layers, 2 heads: 3.9e-6 (blocks.0.ln_1.weight), loss
  2.2e-7; V=65, T=32, E=64, 4 layers, 4 heads: 2.1e-5 (attn.qkv.weight), loss 2.3e-7. Tolerance
  1e-4: about 5x the worst seen; the planted bugs below miss by over 1 (relative);
- a planted bug (layernorm's n · mean(dn ⊙ n) term, or the softmax's rowsum term, dropped) fails.
Parameters are moved off their initial values (LayerNorm gains 1, biases 0), so a missing γ or
bias shows.
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

import handgrad.grads.attention as attention_grads
import handgrad.grads.transformer_stack as stack_grads
from handgrad.grads.cross_entropy import cross_entropy_and_grad
from handgrad.grads.layernorm import layernorm_backward
from handgrad.models.transformer import Transformer
from helpers.gradient_error import max_rel_err

VOCAB, STEPS, BATCH, WIDTH = 7, 5, 3, 8
FLOAT32_RTOL = 1e-4


def model(
    n_layer=2,
    n_head=2,
    bias=True,
    tie_weights=False,
    gelu="tanh",
    dropout=0.0,
    dtype=torch.float64,
    sizes=(VOCAB, STEPS, WIDTH),
    seed=0,
) -> Transformer:
    """A Transformer with every parameter moved by N(0, 0.3²) from its initial value."""
    vocab, steps, width = sizes
    torch.manual_seed(seed)
    net = Transformer(vocab, steps, n_layer, n_head, width, dropout, bias, tie_weights, gelu)
    with torch.no_grad():
        for param in net.parameters():
            param.add_(0.3 * torch.randn_like(param))
    return net.to(dtype)


def batch(vocab=VOCAB, steps=STEPS, size=BATCH, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return tuple(torch.randint(0, vocab, (size, steps), generator=gen) for _ in range(2))


def errors(net: Transformer, tokens, targets, reference: str = "forward") -> dict[str, float]:
    """Max rel err of the loss and of every parameter's gradient, hand against autograd of
    `reference` ("forward", or "trace": the written-out forward), both from one RNG state."""
    params = dict(net.named_parameters())
    with torch.random.fork_rng():
        logits = net(tokens) if reference == "forward" else net.trace(tokens)[0]
        loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten())
        auto = torch.autograd.grad(loss, list(params.values()))
    with torch.no_grad():
        logits, tape = net.trace(tokens)
        hand_loss, grad_logits = cross_entropy_and_grad(logits, targets)
        hand = net.hand_backward(tape, grad_logits)
    assert hand.keys() == params.keys()  # none missing, none extra
    rows = {name: max_rel_err(hand[name], grad) for name, grad in zip(params, auto, strict=True)}
    return {"(loss)": max_rel_err(hand_loss, loss), **rows}


def bad(rows: dict[str, float], rtol: float) -> dict[str, float]:
    return {name: err for name, err in rows.items() if not err <= rtol}


GRID = list(
    itertools.product([True, False], [True, False], ["tanh", "exact"], [1, 2, 3], [1, 2, 4])
)


@pytest.mark.parametrize(
    ("bias", "tie_weights", "gelu"), sorted({case[:3] for case in GRID}), ids=str
)
def test_hand_gradients_equal_autograd_of_forward_in_float64(bias, tie_weights, gelu):
    """Every n_layer x n_head of one bias x tie_weights x gelu (8 tests of 9 models each)."""
    tokens, targets = batch()
    for n_layer, n_head in itertools.product([1, 2, 3], [1, 2, 4]):
        net = model(n_layer, n_head, bias, tie_weights, gelu)
        assert not bad(errors(net, tokens, targets), 1e-8), (n_layer, n_head)


@pytest.mark.parametrize("tie_weights", [False, True])
@pytest.mark.parametrize("bias", [True, False])
def test_hand_gradients_equal_autograd_of_trace_with_dropout_in_float64(bias, tie_weights):
    tokens, targets = batch()
    for gelu, n_layer in [("tanh", 1), ("exact", 2)]:
        net = model(n_layer, 2, bias, tie_weights, gelu, dropout=0.3).train()
        assert not bad(errors(net, tokens, targets, reference="trace"), 1e-8), (gelu, n_layer)


def test_trace_draws_its_masks_in_training_only_and_from_the_global_rng():
    net = model(2, 2, dropout=0.3)
    tokens, _ = batch()
    torch.manual_seed(1)
    first = net.train().trace(tokens)
    torch.manual_seed(1)
    again = net.trace(tokens)
    different = net.trace(tokens)
    torch.testing.assert_close(first[0], again[0], rtol=0, atol=0)
    assert not torch.equal(first[0], different[0])
    mask = first[1].blocks[1].masks.probs
    assert mask.shape == (BATCH, 2, STEPS, STEPS)
    assert set(mask.unique().tolist()) == {0.0, 1 / 0.7}
    assert first[1].emb_mask is not None
    _, tape = net.eval().trace(tokens)
    assert tape.emb_mask is None and all(m is None for b in tape.blocks for m in b.masks)


@pytest.mark.parametrize("training", [False, True], ids=["eval", "train-dropout-0"])
@pytest.mark.parametrize("gelu", ["tanh", "exact"])
def test_trace_without_dropout_equals_forward(gelu, training):
    net = model(3, 4, gelu=gelu, dropout=0.0 if training else 0.3).train(training)
    tokens, _ = batch()
    with torch.no_grad():
        torch.testing.assert_close(net.trace(tokens)[0], net(tokens), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(("bias", "tie_weights"), [(True, False), (False, True)])
@pytest.mark.parametrize(
    ("sizes", "n_layer", "n_head"), [((VOCAB, STEPS, WIDTH), 2, 2), ((65, 32, 64), 4, 4)]
)
def test_hand_gradients_equal_autograd_of_torchs_kernels_in_float32(
    sizes, n_layer, n_head, bias, tie_weights
):
    for gelu in ("tanh", "exact"):
        net = model(n_layer, n_head, bias, tie_weights, gelu, dtype=torch.float32, sizes=sizes)
        tokens, targets = batch(vocab=sizes[0], steps=sizes[1], size=4)
        assert not bad(errors(net, tokens, targets), FLOAT32_RTOL), gelu


def layernorm_backward_without_the_n_term(grad_out, normed, rstd, weight):
    """The right backward plus back the term it subtracts: dx = rstd · (dn − mean(dn))."""
    grad_x, grad_weight, grad_bias = layernorm_backward(grad_out, normed, rstd, weight)
    grad_normed = grad_out * weight
    term = rstd * normed * (grad_normed * normed).mean(-1, keepdim=True)
    return grad_x + term, grad_weight, grad_bias


def softmax_backward_without_the_rowsum(probs, grad_probs):
    return probs * grad_probs


@pytest.mark.parametrize(
    ("module", "name", "wrong"),
    [
        (stack_grads, "layernorm_backward", layernorm_backward_without_the_n_term),
        (attention_grads, "softmax_backward", softmax_backward_without_the_rowsum),
    ],
    ids=["layernorm-n-term", "softmax-rowsum"],
)
def test_a_planted_bug_fails_the_comparison(monkeypatch, module, name, wrong):
    net = model(2, 2)
    tokens, targets = batch()
    assert not bad(errors(net, tokens, targets), 1e-8)
    monkeypatch.setattr(module, name, wrong)
    failing = bad(errors(net, tokens, targets), 1e-3)
    assert failing, "the planted bug went unnoticed"
    assert "(loss)" not in failing  # the forward is untouched


def test_parameter_names_and_tied_weights():
    names = [name for name, _ in model(1, 2, bias=True).named_parameters()]
    block = [f"blocks.0.{n}" for n in ("ln_1", "attn.qkv", "attn.proj", "ln_2", "mlp.fc")]
    block += ["blocks.0.mlp.proj"]
    expected = ["tok_emb.weight", "pos_emb.weight"]
    expected += [f"{n}.{kind}" for n in block for kind in ("weight", "bias")]
    expected += ["ln_f.weight", "ln_f.bias", "head.weight"]
    assert names == expected
    tied = model(1, 2, bias=False, tie_weights=True)
    tied_names = [name for name, _ in tied.named_parameters()]
    assert "head.weight" not in tied_names and not any(n.endswith("bias") for n in tied_names)
    assert tied.head.weight is tied.tok_emb.weight


def test_initial_weights_follow_nanogpt():
    torch.manual_seed(0)
    net = Transformer(65, 32, 4, 4, 64, 0.0, bias=True, tie_weights=False, gelu="tanh")
    params = dict(net.named_parameters())
    for name, param in params.items():
        if name.endswith("bias"):
            assert param.eq(0).all(), name
        elif ".ln_" in name or name.startswith("ln_"):
            assert param.eq(1).all(), name
        else:
            std = 0.02 / math.sqrt(8) if name.endswith("proj.weight") else 0.02
            assert param.std().item() == pytest.approx(std, rel=0.1), name
