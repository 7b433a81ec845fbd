"""Batches sliced from in-memory tensors: one index per batch, no per-sample collation."""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from torch.utils.data import DataLoader, Dataset, Sampler


class TensorSlices(Dataset):
    """Tensors sharing their first dimension, indexed by a whole batch of rows at once."""

    def __init__(self, *tensors: torch.Tensor) -> None:
        self.tensors = tensors

    def __len__(self) -> int:
        return self.tensors[0].shape[0]

    def __getitem__(self, rows: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(t[rows] for t in self.tensors)


class BatchRows(Sampler[torch.Tensor]):
    """Row indices, one tensor per batch; shuffled by a generator seeded with seed + epoch.

    Seeding from the epoch (Lightning calls `set_epoch` on a DataLoader's sampler) rather than the
    global RNG makes every epoch's order reproducible on its own, so a resumed run sees the same
    batches as an uninterrupted one.
    """

    def __init__(self, n_rows: int, batch_size: int, shuffle: bool, seed: int = 0) -> None:
        self.n_rows, self.batch_size, self.shuffle, self.seed = n_rows, batch_size, shuffle, seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return math.ceil(self.n_rows / self.batch_size)

    def __iter__(self) -> Iterator[torch.Tensor]:
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed + self.epoch)
            order = torch.randperm(self.n_rows, generator=generator)
        else:
            order = torch.arange(self.n_rows)
        yield from order.split(self.batch_size)


def tensor_loader(
    *tensors: torch.Tensor, batch_size: int | None, shuffle: bool, seed: int = 0
) -> DataLoader:
    """A DataLoader over whole batches of rows (batch_size None = all rows in one batch).

    A DataLoader (not a bare generator) so Lightning can set the sampler's epoch; `batch_size=None`
    turns off its per-sample collation.
    """
    dataset = TensorSlices(*tensors)
    rows = BatchRows(len(dataset), batch_size or len(dataset), shuffle, seed)
    return DataLoader(dataset, sampler=rows, batch_size=None)
