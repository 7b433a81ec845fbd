"""What DDP ranks exchange outside Lightning's own syncing: every rank's training-epoch state for
a checkpoint, and the mean of the hand-derived gradients (DDP's reducer only averages autograd's).
"""

from __future__ import annotations

import torch


def gather_from_ranks(state: dict) -> list[dict]:
    """[state of rank 0, rank 1, ...]: every rank's `state` (one process: [state])."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return [state]
    states = [None] * torch.distributed.get_world_size()
    torch.distributed.all_gather_object(states, state)
    return states


def mean_across_ranks(grads: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The element-wise mean of `grads` over all DDP ranks, in one all-reduce of one flat vector.

    Every rank must call this with the same names and shapes (each holds a full replica).
    """
    flat = torch.cat([grad.reshape(-1) for grad in grads.values()])
    torch.distributed.all_reduce(flat, op=torch.distributed.ReduceOp.SUM)
    flat /= torch.distributed.get_world_size()
    chunks = flat.split([grad.numel() for grad in grads.values()])
    return {
        name: chunk.view_as(grad) for (name, grad), chunk in zip(grads.items(), chunks, strict=True)
    }
