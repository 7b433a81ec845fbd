"""Language-model batches cut from one token tensor: (X, Y) with Y = X shifted by one token.

A batch is described by the token positions of X, a (rows, steps) LongTensor; `TokenWindows`
gathers X = tokens[positions] and Y = tokens[positions + 1] in two tensor indexing ops. The
samplers below yield those position tensors, so there is no per-sample collation. Positions are
built per epoch by a *plan*, a pure function of (seed, epoch): runs are reproducible and a
resumed run sees the same batches. The plans follow d2l (https://d2l.ai):

- `sequential_plan`: d2l 0.17 `seq_data_iter_sequential`. The tokens after a random offset are cut
  into `batch_size` contiguous rows; batch k holds columns [k*steps, (k+1)*steps) of every row, so
  row i of batch k+1 continues row i of batch k (a model may carry its hidden state across).
- `random_plan`: d2l 0.17 `seq_data_iter_random`. Non-overlapping windows start at
  offset + j*steps; they are shuffled and batched, so neighbouring batches are unrelated.
- `window_plan`: d2l 1.0 `TimeMachine`. Given window starts (one window per start), in order.

Under DDP each rank keeps its part of every epoch's plan (the DataModule asks for it): shuffled
batches are dealt out whole (`row_batches.rank_share`), while a sequential plan is cut by rows
(`row_block`): rank r owns the same contiguous block of rows in every batch, so row i of batch
k+1 still continues row i of batch k on every rank (interleaving batches would break that).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from handgrad.data.resume_position import Position, batches_to_skip
from handgrad.data.row_batches import loader_generator

Plan = Callable[[int], list[torch.Tensor]]


class TokenWindows(Dataset):
    """A 1-D token tensor, indexed by a whole (rows, steps) tensor of positions at once."""

    def __init__(self, tokens: torch.Tensor) -> None:
        self.tokens = tokens

    def __getitem__(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.tokens[positions], self.tokens[positions + 1]


class EpochBatches(Sampler[torch.Tensor]):
    """Yields the position tensors of `plan(epoch)`, the first `num_batches` of them.

    Lightning calls `set_epoch(epoch)` on a DataLoader's sampler before every training epoch
    (also after resuming from a checkpoint); call it yourself in a hand-written loop, as with
    torch's DistributedSampler. Every epoch yields exactly `num_batches` batches (a random offset
    can change d2l's count by one, which would confuse Lightning's epoch length).
    """

    def __init__(self, plan: Plan, num_batches: int, resume_position: Position | None = None):
        self.plan = plan
        self.num_batches = num_batches
        self.resume_position = resume_position  # skip the batches trained before a resume
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.num_batches

    def __iter__(self):
        # A generator, so the plan is drawn at the first batch: resuming, Lightning creates the
        # epoch's iterator before it calls set_epoch (a plan drawn here would be epoch 0's).
        start = batches_to_skip(self.resume_position, self.epoch)
        yield from self.plan(self.epoch)[start : self.num_batches]


def window_loader(tokens: torch.Tensor, batches: EpochBatches) -> DataLoader:
    """A DataLoader over `tokens` whose sampler yields whole batches (`batch_size=None`: no
    collation). The DataLoader is kept so Lightning finds the sampler and sets its epoch."""
    return DataLoader(
        TokenWindows(tokens), sampler=batches, batch_size=None, generator=loader_generator()
    )


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """A generator seeded from (seed, epoch) by a stable hash: one independent stream per epoch."""
    digest = hashlib.blake2b(f"{seed}/{epoch}".encode(), digest_size=8).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest, "little"))


def sequential_plan(
    lo: int, hi: int, batch_size: int, num_steps: int, offset: int, ragged: bool = False
) -> list[torch.Tensor]:
    """Batches of X positions over tokens [lo, hi) starting at lo + offset, rows continuing.

    As d2l 0.17: the n = ((hi - lo - offset - 1) // batch_size) * batch_size tokens after the
    offset form `batch_size` rows of length n / batch_size; the columns left over after whole
    `num_steps` batches are dropped, or (ragged=True, for evaluation) form one narrower batch.
    Every target position (X position + 1) stays below `hi`.
    """
    row_len = (hi - lo - offset - 1) // batch_size
    if row_len < 1:
        return []
    row_starts = lo + offset + torch.arange(batch_size).unsqueeze(1) * row_len
    widths = [num_steps] * (row_len // num_steps)
    if ragged and row_len % num_steps:
        widths.append(row_len % num_steps)
    return [row_starts + k * num_steps + torch.arange(w) for k, w in enumerate(widths)]


def random_plan(
    lo: int, hi: int, batch_size: int, num_steps: int, offset: int, gen: torch.Generator
) -> list[torch.Tensor]:
    """Shuffled non-overlapping windows over tokens [lo, hi), starting at lo + offset + j*steps.

    As d2l 0.17: (hi - lo - offset - 1) // num_steps windows, shuffled, cut into full batches
    (the incomplete last batch is dropped).
    """
    num_windows = max((hi - lo - offset - 1) // num_steps, 0)  # none when a window is too long
    num_batches = num_windows // batch_size
    order = torch.randperm(num_windows, generator=gen)[: num_batches * batch_size]
    starts = lo + offset + order * num_steps
    return window_plan(starts, batch_size, num_steps)


def window_plan(starts: torch.Tensor, batch_size: int, num_steps: int) -> list[torch.Tensor]:
    """One window of `num_steps` X positions per start, `batch_size` windows per batch in the
    given order (the last batch may have fewer rows)."""
    positions = starts.unsqueeze(1) + torch.arange(num_steps)
    return list(positions.split(batch_size)) if len(starts) else []  # split() of nothing is [x]


def row_block(batches: list[torch.Tensor], rank: int, world_size: int) -> list[torch.Tensor]:
    """Rank `rank`'s contiguous block of rows of every (rows, steps) batch; blocks differ in size
    by at most one row (`tensor_split`). World size 1 returns `batches` itself."""
    if world_size == 1:
        return batches
    return [batch.tensor_split(world_size)[rank] for batch in batches]
