"""Every loss forward against torch's own, and each seed recipe's loss against its formula.

The gradient check compares a model's hand loss with the loss autograd differentiates, which is
the same function for the regression models: a wrong loss would pass it. These tests compare
the losses with `F.mse_loss` and `F.cross_entropy` (and the MSE's gradient with autograd's
gradient of `F.mse_loss`), on targets several columns wide, so a mean over rows rather than
over every element shows.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hydra.utils import instantiate

from handgrad.grads.cross_entropy import cross_entropy_and_grad
from handgrad.grads.mse import mse, mse_grad
from handgrad.models.char_rnn import mean_cross_entropy
from handgrad.models.linear import LinearRegression
from handgrad.run.build import build_model
from helpers.runs import compose_config

REDUCTIONS = ["mean", "sum"]
SCALES = [1.0, 0.5, 3.0]


def pred_and_target(rows: int = 5, columns: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(rows * columns)
    return tuple(torch.randn(rows, columns, generator=gen, dtype=torch.float64) for _ in "py")


@pytest.mark.parametrize("shape", [(5, 3), (4, 1), (1, 2)], ids=str)
@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_mse_and_its_gradient_are_torchs(reduction, scale, shape):
    pred, target = pred_and_target(*shape)
    pred.requires_grad_()
    reference = scale * F.mse_loss(pred, target, reduction=reduction)
    (reference_grad,) = torch.autograd.grad(reference, pred)
    pred = pred.detach()
    torch.testing.assert_close(mse(pred, target, reduction, scale), reference, rtol=1e-14, atol=0)
    hand_grad = mse_grad(pred, target, reduction, scale)
    torch.testing.assert_close(hand_grad, reference_grad, rtol=1e-14, atol=0)


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_the_regression_models_loss_is_the_configured_mse(reduction, scale):
    model = LinearRegression(in_features=2, out_features=3, reduction=reduction, scale=scale)
    pred, target = pred_and_target()
    expected = scale * F.mse_loss(pred, target, reduction=reduction)
    torch.testing.assert_close(model.criterion(pred, target), expected, rtol=1e-14, atol=0)
    pred.requires_grad_()
    (expected_grad,) = torch.autograd.grad(
        scale * F.mse_loss(pred, target, reduction=reduction), pred
    )
    torch.testing.assert_close(
        model.criterion_grad(pred.detach(), target), expected_grad, rtol=1e-14, atol=0
    )


def logits_and_targets(steps: int = 4, batch: int = 3, vocab: int = 7):
    gen = torch.Generator().manual_seed(0)
    logits = 2 * torch.randn(steps, batch, vocab, generator=gen, dtype=torch.float64)
    return logits, torch.randint(0, vocab, (steps, batch), generator=gen)


def test_cross_entropy_and_its_gradient_are_torchs():
    logits, targets = logits_and_targets()
    logits.requires_grad_()
    reference = F.cross_entropy(logits.flatten(0, 1), targets.flatten())
    (reference_grad,) = torch.autograd.grad(reference, logits)
    loss, grad = cross_entropy_and_grad(logits.detach(), targets)
    torch.testing.assert_close(loss, reference, rtol=1e-14, atol=0)
    torch.testing.assert_close(grad, reference_grad, rtol=1e-12, atol=1e-16)


def test_the_char_rnns_loss_pairs_time_major_logits_with_batch_major_targets():
    """mean_cross_entropy takes logits (T x B x V) and targets (B x T), as the model's batches
    come: the mean over every (t, b) of -log softmax(logits[t, b])[targets[b, t]]."""
    logits, targets = logits_and_targets()
    log_probs = logits.log_softmax(-1)
    steps, batch = targets.shape
    by_token = [-log_probs[t, b, targets[t, b]] for t in range(steps) for b in range(batch)]
    expected = torch.stack(by_token).mean()
    torch.testing.assert_close(mean_cross_entropy(logits, targets.T), expected, rtol=1e-14, atol=0)


# The seeds' loss definitions, as their experiment files describe them.
SEED_LOSSES = {
    "seed000_sigmoid": lambda p, y: (p - y).square().mean(),  # mean MSE
    "seed001_mlp": lambda p, y: (p - y).square().sum(),  # sum of squares
    "seed001_mlp_adam": lambda p, y: (p - y).square().sum(),  # seed 001's loss
    "seed002_linreg": lambda p, y: (p - y).square().sum() / 2,  # sum/2
    "seed002_deep_linear": lambda p, y: (p - y).square().mean(),  # mean MSE
    "seed004_linreg": lambda p, y: (p - y).square().mean(),  # the default: mean MSE
}


@pytest.mark.parametrize("experiment", SEED_LOSSES)
def test_each_seed_recipes_loss_is_its_formula(experiment, tmp_path):
    cfg = compose_config([f"experiment={experiment}"], tmp_path)
    datamodule = instantiate(cfg.data, _convert_="all")
    model = build_model(cfg, datamodule)
    x, y = datamodule.train_tensors()
    with torch.no_grad():
        expected = SEED_LOSSES[experiment](model(x), y)
        torch.testing.assert_close(model.loss((x, y), None)[0], expected, rtol=1e-6, atol=0)
        hand_loss, _, _ = model.hand_loss_and_grads((x, y), None)
    torch.testing.assert_close(hand_loss, expected, rtol=1e-6, atol=0)
