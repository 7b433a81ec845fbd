"""Batches sliced from in-memory tensors: one index per batch, no per-sample collation.

Under DDP (several processes, "ranks") the samplers here and in `token_windows.py` split each epoch
themselves (the Trainer runs with `use_distributed_sampler: false`): a DataModule reads its rank
and the world size from the attached trainer (`rank_and_world`) when it builds a loader. One
process is rank 0 of 1 and sees exactly the batches it saw before.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from handgrad.data.resume_position import Position, batches_to_skip


def rank_and_world(datamodule) -> tuple[int, int]:
    """(global rank, world size) of the trainer `datamodule` is attached to; (0, 1) without one."""
    trainer = datamodule.trainer
    if trainer is None:
        return 0, 1
    return trainer.global_rank, trainer.world_size


def rank_share(batches: Sequence, rank: int, world_size: int, pad: bool = True) -> Sequence:
    """Rank `rank`'s share of an epoch's `batches`: batches rank, rank + W, rank + 2W, ...

    pad=True (training): every rank gets ceil(n / W) batches, the short ranks wrapping around to
    the first batches (as torch's DistributedSampler pads), because DDP needs the same number of
    steps on every rank. pad=False (validation, whose metrics are synced once per epoch): no
    repeats, so the epoch's metric is exact, except that a rank left with nothing (n < W) takes
    one batch again so that it still logs. World size 1 returns `batches` itself.
    """
    n = len(batches)
    if world_size == 1 or n == 0:
        return batches
    count = -(-n // world_size) if pad else max(len(range(rank, n, world_size)), 1)
    return [batches[(rank + j * world_size) % n] for j in range(count)]


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

    `passes` > 1 makes one epoch that many passes over the rows, each in a new order: a
    full-batch recipe then takes many steps per epoch instead of paying Lightning's per-epoch
    work (hooks, a new iterator, the progress bar's reset) on every step.

    Under DDP every rank draws the same order (same seed and epoch) and takes its `rank_share` of
    the batches: training ranks get equally many (pad=True), validation ranks no repeats.
    """

    def __init__(
        self,
        n_rows: int,
        batch_size: int,
        shuffle: bool,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        pad: bool = True,
        passes: int = 1,
        resume_position: Position | None = None,
    ) -> None:
        self.n_rows, self.batch_size, self.shuffle, self.seed = n_rows, batch_size, shuffle, seed
        self.rank, self.world_size, self.pad = rank, world_size, pad
        self.passes = passes
        self.resume_position = resume_position  # skip the batches trained before a resume
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        num_batches = self.passes * math.ceil(self.n_rows / self.batch_size)
        return len(rank_share(range(num_batches), self.rank, self.world_size, self.pad))

    def __iter__(self) -> Iterator[torch.Tensor]:
        # A generator: the order is drawn at the first batch, after Lightning's set_epoch (when
        # resuming, it creates the epoch's iterator before calling set_epoch).
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        batches = []
        for _ in range(self.passes):
            if self.shuffle:
                order = torch.randperm(self.n_rows, generator=generator)
            else:
                order = torch.arange(self.n_rows)
            batches.extend(order.split(self.batch_size))
        share = rank_share(batches, self.rank, self.world_size, self.pad)
        yield from share[batches_to_skip(self.resume_position, self.epoch) :]


def tensor_loader(*tensors: torch.Tensor, batch_size: int | None, **rows) -> DataLoader:
    """A DataLoader over whole batches of rows (batch_size None = all rows in one batch); `rows`
    are `BatchRows`'s options (shuffle, seed, rank, world_size, pad, passes, resume_position).

    A DataLoader (not a bare generator) so Lightning can set the sampler's epoch; `batch_size=None`
    turns off its per-sample collation.
    """
    dataset = TensorSlices(*tensors)
    sampler = BatchRows(len(dataset), batch_size or len(dataset), **rows)
    return DataLoader(dataset, sampler=sampler, batch_size=None, generator=loader_generator())


def loader_generator() -> torch.Generator:
    """A DataLoader's own generator. Every new iterator of a DataLoader draws a base seed (for its
    workers) from it; from the global one that draw would shift dropout's random numbers by one
    each time an epoch's iterator is made, so a resumed run would drop other units."""
    return torch.Generator()
