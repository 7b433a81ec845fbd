"""The synthetic regression sets: the generated tensors, the split, the batches and the errors."""

from __future__ import annotations

import math

import pytest
import torch

from handgrad.data.synthetic_regression import (
    FixedRegressionDataModule,
    RandomRegressionDataModule,
    RegressionDataModule,
)
from handgrad.errors import ConfigError
from helpers.settings_errors import settings_error

W_TRUE = [3.0, -2.0]
B_TRUE = 0.8


def line(**kwargs) -> RegressionDataModule:
    """y = 3 x_1 - 2 x_2 + 0.8 (+ noise), 40 samples unless `kwargs` say otherwise."""
    return RegressionDataModule(**{"n_samples": 40, "w_true": W_TRUE, "b_true": B_TRUE, **kwargs})


def random_data(**kwargs) -> RandomRegressionDataModule:
    return RandomRegressionDataModule(
        **{"n_samples": 40, "in_features": 5, "out_features": 3, **kwargs}
    )


def epoch_batches(dm, epoch: int) -> list[torch.Tensor]:
    """The row indices of each training batch of `epoch`, from a fresh loader."""
    sampler = dm.train_dataloader().sampler
    sampler.set_epoch(epoch)
    return list(sampler)


def exact_line(x: torch.Tensor) -> torch.Tensor:
    return x @ torch.tensor(W_TRUE).unsqueeze(1) + B_TRUE


# --- the generated tensors -----------------------------------------------------------------------
@pytest.mark.parametrize("x_kind", ["uniform", "arange", "normal"])
def test_without_noise_y_is_exactly_the_line(x_kind):
    dm = line(n_samples=50, noise_std=0.0, x=x_kind)
    assert dm.x.shape == (50, 2) and dm.y.shape == (50, 1)
    assert dm.x.dtype == dm.y.dtype == torch.float32
    assert torch.equal(dm.y, exact_line(dm.x))


def test_arange_inputs_are_the_odd_numbers_in_every_column():
    dm = line(n_samples=50, x="arange")
    assert dm.x[:, 0].tolist() == list(range(1, 100, 2))
    assert torch.equal(dm.x[:, 0], dm.x[:, 1])


@pytest.mark.parametrize(
    ("x_kind", "mean", "std", "low", "high"),
    [("uniform", 0.5, 1 / math.sqrt(12), 0.0, 1.0), ("normal", 0.0, 1.0, -math.inf, math.inf)],
)
def test_random_inputs_follow_their_distribution(x_kind, mean, std, low, high):
    x = line(n_samples=4000, x=x_kind).x
    assert abs(x.mean().item() - mean) < 0.05 and abs(x.std().item() - std) < 0.05
    assert low <= x.min().item() and x.max().item() < high


@pytest.mark.parametrize("noise_std", [0.1, 2.0])
def test_noise_has_the_requested_std(noise_std):
    dm = line(n_samples=20000, noise_std=noise_std, x="normal")
    noise = dm.y - exact_line(dm.x)
    assert abs(noise.mean().item()) < 0.05 * noise_std
    assert noise.std().item() == pytest.approx(noise_std, rel=0.05)


MAKERS = {
    "regression": lambda seed: line(noise_std=0.1, x="normal", val_fraction=0.25, seed=seed),
    "random": lambda seed: random_data(val_fraction=0.25, seed=seed),
}


@pytest.mark.parametrize("make", MAKERS.values(), ids=MAKERS.keys())
def test_a_seed_fixes_the_tensors_and_the_split(make):
    first, again, other = make(3), make(3), make(4)
    for name in ("x", "y", "train_rows", "val_rows"):
        assert torch.equal(getattr(first, name), getattr(again, name)), name
        assert not torch.equal(getattr(first, name), getattr(other, name)), name


def test_random_regression_shapes():
    dm = RandomRegressionDataModule(n_samples=12, in_features=7, out_features=4)
    assert dm.x.shape == (12, 7) and dm.y.shape == (12, 4)
    assert not torch.equal(dm.x[:, :4], dm.y)  # y is drawn on its own, not taken from x
    assert torch.equal(dm.val_rows, dm.train_rows)  # val_fraction 0 by default


@pytest.mark.parametrize(
    ("make", "facts"),
    [
        (lambda: line(w_true=[1.0, 2.0, 3.0]), {"in_features": 3, "out_features": 1}),
        (lambda: random_data(in_features=7, out_features=4), {"in_features": 7, "out_features": 4}),
        (FixedRegressionDataModule, {"in_features": 2, "out_features": 2}),
    ],
    ids=["regression", "random", "fixed"],
)
def test_model_facts_are_the_feature_counts(make, facts):
    assert make().model_facts() == facts


# --- the train/validation split ------------------------------------------------------------------
@pytest.mark.parametrize(("n_samples", "val_fraction", "n_val"), [(40, 0.25, 10), (10, 0.2, 2)])
def test_val_fraction_splits_rows_disjointly(n_samples, val_fraction, n_val):
    dm = line(n_samples=n_samples, val_fraction=val_fraction)
    train, val = dm.train_rows.tolist(), dm.val_rows.tolist()
    assert len(val) == n_val and not set(train) & set(val)
    assert sorted(train + val) == list(range(n_samples))
    val_x, val_y = dm.val_tensors()
    assert torch.equal(val_x, dm.x[dm.val_rows]) and torch.equal(val_y, dm.y[dm.val_rows])
    served = list(dm.val_dataloader())
    assert torch.equal(torch.cat([x for x, _ in served]), val_x)


def test_val_fraction_zero_validates_on_the_training_rows():
    dm = line(val_fraction=0.0)
    assert torch.equal(dm.train_rows, torch.arange(40)) and torch.equal(dm.val_rows, dm.train_rows)
    assert all(torch.equal(a, b) for a, b in zip(dm.val_tensors(), (dm.x, dm.y), strict=True))


# --- the training batches ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("batch_size", "passes", "n_batches"),
    [(None, 1, 1), (None, 3, 3), (8, 1, 5), (8, 4, 20), (37, 1, 1), (1, 2, 74)],
)
def test_batches_per_epoch(batch_size, passes, n_batches):
    dm = line(n_samples=37, val_fraction=0.0, batch_size=batch_size, passes_per_epoch=passes)
    loader = dm.train_dataloader()
    batches = epoch_batches(dm, 0)
    assert len(loader) == len(batches) == n_batches
    assert len(batches[0]) == min(batch_size or 37, 37)
    assert torch.bincount(torch.cat(batches)).tolist() == [passes] * 37  # every row once a pass
    for rows, (x, y) in zip(batches, loader, strict=True):
        assert torch.equal(x, dm.x[rows]) and torch.equal(y, dm.y[rows])


def test_each_epoch_has_its_own_reproducible_order():
    def shuffled() -> RegressionDataModule:
        return line(batch_size=4, val_fraction=0.0, seed=5)

    epoch_3 = torch.cat(epoch_batches(shuffled(), 3))
    assert torch.equal(epoch_3, torch.cat(epoch_batches(shuffled(), 3)))
    assert not torch.equal(epoch_3, torch.cat(epoch_batches(shuffled(), 4)))
    assert sorted(epoch_3.tolist()) == list(range(40))


def test_shuffle_false_keeps_row_order():
    dm = line(batch_size=4, val_fraction=0.0, shuffle=False)
    for epoch in (0, 1):
        batches = epoch_batches(dm, epoch)
        assert [b.tolist() for b in batches] == [list(range(i, i + 4)) for i in range(0, 40, 4)]


# --- FixedRegressionDataModule -------------------------------------------------------------------
def test_fixed_data_is_the_given_samples_in_order():
    x, y = [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], [[1.0], [2.0], [3.0]]
    dm = FixedRegressionDataModule(x=x, y=y)
    assert dm.x.tolist() == x and dm.y.tolist() == y
    ((batch_x, batch_y),) = list(dm.train_dataloader())
    assert batch_x.tolist() == x and batch_y.tolist() == y


EQUAL_ROWS = "must be a list of equal-length rows of numbers, e.g. [[-0.5, 0.1]]"
BAD_MATRICES = [
    ([[1.0], [2.0]], [[1.0]] * 3, "data.x has 2 rows but data.y has 3; give one y row per x row"),
    ([[1.0, 2.0], [3.0]], [[1.0]] * 2, f"data.x=[[1.0, 2.0], [3.0]] {EQUAL_ROWS}"),
    ([[1.0]] * 2, [[1.0, 2.0], [3.0]], f"data.y=[[1.0, 2.0], [3.0]] {EQUAL_ROWS}"),
    ([1.0, 2.0], [[1.0]] * 2, f"data.x=[1.0, 2.0] {EQUAL_ROWS}"),
    ([], [[1.0]], f"data.x=[] {EQUAL_ROWS}"),
]


@pytest.mark.parametrize(
    ("x", "y", "message"), BAD_MATRICES, ids=["rows", "ragged-x", "ragged-y", "flat-x", "empty-x"]
)
def test_fixed_data_rejects_bad_matrices(x, y, message):
    assert settings_error(["model=mlp", "data=fixed_regression"], {"data.x": x, "data.y": y}) == (
        message
    )


# --- config errors -------------------------------------------------------------------------------
BATCH_SIZE_RULE = "must be an integer >= 1, or null for full batches"
BAD_VALUES = [
    (line, {"batch_size": 0}, f"data.batch_size=0 {BATCH_SIZE_RULE}"),
    (line, {"batch_size": 2.5}, f"data.batch_size=2.5 {BATCH_SIZE_RULE}"),
    (line, {"val_fraction": 1}, "data.val_fraction=1 must be in [0, 1)"),
    (line, {"val_fraction": -0.1}, "data.val_fraction=-0.1 must be in [0, 1)"),
    (line, {"passes_per_epoch": 0}, "data.passes_per_epoch=0 must be an integer >= 1"),
    (line, {"n_samples": 0}, "data.n_samples=0 must be >= 1"),
    (line, {"w_true": []}, "data.w_true must list at least one weight, e.g. [3.0]"),
    (line, {"x": "nope"}, "data.x='nope' is not one of uniform, arange, normal"),
    (line, {"noise_std": -1}, "data.noise_std=-1 must be >= 0"),
    (random_data, {"in_features": 0}, "data.in_features=0 must be >= 1"),
    (random_data, {"out_features": 0}, "data.out_features=0 must be >= 1"),
    (random_data, {"passes_per_epoch": 1.5}, "data.passes_per_epoch=1.5 must be an integer >= 1"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("make", "kwargs", "message"),
    BAD_VALUES,
    ids=[
        f"{make.__name__}-{','.join(f'{k}={v}' for k, v in kw.items())}"
        for make, kw, _ in BAD_VALUES
    ],
)
def test_bad_values_raise_one_config_error(make, kwargs, message):
    model = {line: "model=linear", random_data: "model=mlp"}[make]
    values = {f"data.{key}": value for key, value in kwargs.items()}
    assert settings_error([model], values) == message


def test_a_split_that_leaves_no_training_rows_is_a_config_error():
    """What the rows come to is known once the data module has them."""
    with pytest.raises(ConfigError) as caught:
        line(n_samples=1, val_fraction=0.6)
    assert str(caught.value) == "data.val_fraction=0.6 leaves no training rows"
