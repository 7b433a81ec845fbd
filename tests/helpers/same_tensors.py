"""Equality to the last bit of what checkpoints hold: nested dicts and lists of tensors and
numbers."""

from __future__ import annotations

import torch


def assert_same_tensors(a, b, where: str = "") -> None:
    """`a` and `b` hold the same keys, lengths, numbers and tensors (torch.equal); `where` names
    the first difference."""
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            assert_same_tensors(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same_tensors(x, y, f"{where}[{i}]")
    else:
        assert a == b, where
