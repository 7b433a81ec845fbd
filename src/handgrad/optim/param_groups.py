"""Optimizer parameter groups: a learning rate per parameter name or glob (lr_by_param)."""

from __future__ import annotations

from collections.abc import Iterable
from fnmatch import fnmatchcase

import torch

from handgrad.errors import ConfigError, is_number


def param_groups(
    named_parameters: Iterable[tuple[str, torch.nn.Parameter]], lr_by_param: dict[str, float]
) -> list[dict]:
    """Split parameters into optimizer groups by learning rate.

    `lr_by_param` maps a parameter name or glob pattern (`b`, `layers.*.bias`) to its learning rate;
    the first matching pattern wins, unmatched parameters form one group with the optimizer's lr.
    A pattern that matches nothing is a config error (it is almost always a typo).
    """
    named = list(named_parameters)
    groups: dict[str | None, list[torch.nn.Parameter]] = {}
    for name, param in named:
        pattern = next((p for p in lr_by_param if fnmatchcase(name, p)), None)
        groups.setdefault(pattern, []).append(param)
    for pattern, lr in lr_by_param.items():
        if not (is_number(lr) and lr >= 0):
            raise ConfigError(f"optimizer.lr_by_param.{pattern}={lr!r} must be a number >= 0")
    unused = [p for p in lr_by_param if p not in groups]
    if unused:
        names = ", ".join(name for name, _ in named)
        raise ConfigError(
            f"optimizer.lr_by_param: {', '.join(unused)} matches no parameter; "
            f"the model's parameters are: {names}"
        )
    result = [{"params": groups[None]}] if None in groups else []
    result += [{"params": groups[p], "lr": float(lr_by_param[p])} for p in lr_by_param]
    return result
