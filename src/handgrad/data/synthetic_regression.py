"""Synthetic regression sets, generated once into tensors.

`RegressionDataModule`: y = X w_true + b_true + noise, with noise ~ N(0, noise_std^2).
`RandomRegressionDataModule`: x and y both drawn from N(0, 1) (experiment=seed001_mlp), so a
model can only memorise them.
`FixedRegressionDataModule`: samples given in the config (experiment=seed000_sigmoid's one x, y).
"""

from __future__ import annotations

import torch

from handgrad.data.resume_position import ResumableDataModule
from handgrad.data.row_batches import rank_and_world, tensor_loader
from handgrad.errors import require


def make_inputs(kind: str, n_samples: int, in_features: int, gen: torch.Generator) -> torch.Tensor:
    """An (n_samples, in_features) input matrix.

    uniform: U[0, 1) like torch.rand; arange: 1, 3, 5, ... in every column (x = 1, 3, ..., 99 for
    50 samples, experiment=seed002_linreg); normal: N(0, 1).
    """
    if kind == "uniform":
        return torch.rand(n_samples, in_features, generator=gen)
    if kind == "arange":
        column = torch.arange(1, 2 * n_samples, 2, dtype=torch.float32)
        return column.unsqueeze(1).repeat(1, in_features)
    return torch.randn(n_samples, in_features, generator=gen)


class _SplitTensorsDataModule(ResumableDataModule):
    """Holds x, y tensors and serves a train/validation split of them.

    Subclasses fill `self.x`, `self.y` in `make_tensors`. With val_fraction 0 the training set is
    also the validation set (a fit reported on the data it was trained on).
    """

    def __init__(
        self,
        batch_size: int | None,
        val_fraction: float,
        shuffle: bool,
        seed: int,
        passes_per_epoch: int = 1,
    ):
        super().__init__()
        self.batch_size = batch_size
        self.passes_per_epoch = passes_per_epoch
        self.val_fraction = val_fraction
        self.shuffle = shuffle
        self.seed = seed
        self.generator = torch.Generator().manual_seed(seed)
        self.x, self.y = self.make_tensors()
        self.train_rows, self.val_rows = self._split(self.x.shape[0])

    def make_tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def _split(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        n_val = int(round(n * self.val_fraction))
        if n_val == 0:
            all_rows = torch.arange(n)
            return all_rows, all_rows
        require(n - n_val >= 1, f"data.val_fraction={self.val_fraction} leaves no training rows")
        order = torch.randperm(n, generator=self.generator)
        return order[n_val:].sort().values, order[:n_val].sort().values

    def model_facts(self) -> dict[str, int]:
        """What a model must know about this data to be built."""
        return {"in_features": self.x.shape[1], "out_features": self.y.shape[1]}

    def train_tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x[self.train_rows], self.y[self.train_rows]

    def val_tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x[self.val_rows], self.y[self.val_rows]

    def train_dataloader(self):
        rank, world_size = rank_and_world(self)
        return tensor_loader(
            *self.train_tensors(),
            batch_size=self.batch_size,
            shuffle=self.shuffle,
            seed=self.seed,
            rank=rank,
            world_size=world_size,
            passes=self.passes_per_epoch,
            resume_position=self.resume_position,
        )

    def val_dataloader(self):
        rank, world_size = rank_and_world(self)
        return tensor_loader(
            *self.val_tensors(),
            batch_size=self.batch_size,
            shuffle=False,
            rank=rank,
            world_size=world_size,
            pad=False,
        )


class RegressionDataModule(_SplitTensorsDataModule):
    """y = X w_true + b_true + noise; X is (n_samples, len(w_true)), y is (n_samples, 1)."""

    def __init__(
        self,
        n_samples: int = 100,
        w_true: list[float] = (3.0,),
        b_true: float = 0.8,
        noise_std: float = 0.0,
        x: str = "uniform",
        batch_size: int | None = None,
        val_fraction: float = 0.2,
        shuffle: bool = True,
        seed: int = 0,
        passes_per_epoch: int = 1,
    ):
        self.n_samples = n_samples
        self.w_true = torch.tensor([float(w) for w in w_true]).unsqueeze(1)
        self.b_true = float(b_true)
        self.noise_std = noise_std
        self.x_kind = x
        super().__init__(batch_size, val_fraction, shuffle, seed, passes_per_epoch)
        self.save_hyperparameters(logger=False)

    def make_tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        x = make_inputs(self.x_kind, self.n_samples, self.w_true.shape[0], self.generator)
        noise = self.noise_std * torch.randn(self.n_samples, 1, generator=self.generator)
        return x, x @ self.w_true + self.b_true + noise


class RandomRegressionDataModule(_SplitTensorsDataModule):
    """Fixed x ~ N(0, 1), (n_samples, in_features), and y ~ N(0, 1), (n_samples, out_features)."""

    def __init__(
        self,
        n_samples: int = 64,
        in_features: int = 1000,
        out_features: int = 10,
        batch_size: int | None = None,
        val_fraction: float = 0.0,
        shuffle: bool = True,
        seed: int = 0,
        passes_per_epoch: int = 1,
    ):
        self.n_samples, self.in_features, self.out_features = n_samples, in_features, out_features
        super().__init__(batch_size, val_fraction, shuffle, seed, passes_per_epoch)
        self.save_hyperparameters(logger=False)

    def make_tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.randn(self.n_samples, self.in_features, generator=self.generator)
        y = torch.randn(self.n_samples, self.out_features, generator=self.generator)
        return x, y


class FixedRegressionDataModule(_SplitTensorsDataModule):
    """The samples written in the config: x (n_samples x in_features), y (n_samples x out_features).

    Defaults are one sample x = [-0.5, 0.1], y = [0.1, 0.2] (experiment=seed000_sigmoid).
    """

    def __init__(
        self,
        x: list[list[float]] = ((-0.5, 0.1),),
        y: list[list[float]] = ((0.1, 0.2),),
        batch_size: int | None = None,
        val_fraction: float = 0.0,
        shuffle: bool = False,
        seed: int = 0,
    ):
        self.given_x = torch.tensor(x, dtype=torch.float32)
        self.given_y = torch.tensor(y, dtype=torch.float32)
        super().__init__(batch_size, val_fraction, shuffle, seed)
        self.save_hyperparameters(logger=False)

    def make_tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.given_x, self.given_y
