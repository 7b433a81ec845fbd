"""The gradient check's error measure for tests that compare tensors outside a LightningModule."""

from __future__ import annotations

import math

import torch


def max_rel_err(hand: torch.Tensor, auto: torch.Tensor) -> float:
    """max |h − a| / max |a|, as `handgrad.gradcheck` measures a row (relative to the largest
    entry, so an entry that is 0 on both sides costs nothing); all-zero `auto`: 0 or inf."""
    assert hand.shape == auto.shape, (hand.shape, auto.shape)
    abs_err, scale = (hand - auto).abs().max().item(), auto.abs().max().item()
    if scale == 0:
        return 0.0 if abs_err == 0 else math.inf
    return abs_err / scale


def normal(*shape: int, seed: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """N(0, 1) entries from a generator of its own (the global RNG is left alone)."""
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)
