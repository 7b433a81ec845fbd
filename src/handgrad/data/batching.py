"""Batches sliced from in-memory tensors: one index per batch, no per-sample collation."""

from __future__ import annotations

import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, SequentialSampler


class TensorSlices(Dataset):
    """Tensors sharing their first dimension, indexed by a list of rows at once."""

    def __init__(self, *tensors: torch.Tensor) -> None:
        self.tensors = tensors

    def __len__(self) -> int:
        return self.tensors[0].shape[0]

    def __getitem__(self, rows: list[int]) -> tuple[torch.Tensor, ...]:
        index = torch.as_tensor(rows)
        return tuple(t[index] for t in self.tensors)


def tensor_loader(*tensors: torch.Tensor, batch_size: int | None, shuffle: bool) -> DataLoader:
    """A DataLoader whose sampler yields whole batches of row indices (batch_size None = all rows).

    The DataLoader is kept (rather than a bare generator) so Lightning can set sampler epochs and
    inject distributed samplers; `batch_size=None` turns off its per-sample collation.
    """
    dataset = TensorSlices(*tensors)
    rows = RandomSampler(dataset) if shuffle else SequentialSampler(dataset)
    batches = BatchSampler(rows, batch_size or len(dataset), drop_last=False)
    return DataLoader(dataset, sampler=batches, batch_size=None)
