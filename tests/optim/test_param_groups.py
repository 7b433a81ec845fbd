"""optimizer.lr_by_param: parameters split into optimizer groups by name or glob, checked values."""

from __future__ import annotations

import math

import pytest
import torch

from handgrad.errors import ConfigError
from handgrad.optim.param_groups import param_groups

NAMES = ["layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias", "head.weight"]


def named() -> list[tuple[str, torch.nn.Parameter]]:
    return [(name, torch.nn.Parameter(torch.zeros(1))) for name in NAMES]


def names_by_group(groups: list[dict], parameters: list) -> list[tuple[float | None, list[str]]]:
    """Each group as (its lr, or None for the optimizer's; the names of its parameters)."""
    name_of = {id(param): name for name, param in parameters}
    return [(g.get("lr"), [name_of[id(p)] for p in g["params"]]) for g in groups]


def test_unmatched_parameters_keep_the_optimizers_lr_in_one_group_first():
    parameters = named()
    groups = param_groups(parameters, {"*.bias": 0.5, "head.*": 0})
    assert names_by_group(groups, parameters) == [
        (None, ["layers.0.weight", "layers.1.weight"]),
        (0.5, ["layers.0.bias", "layers.1.bias"]),
        (0.0, ["head.weight"]),  # lr 0 freezes a parameter: allowed
    ]
    assert all(isinstance(g["lr"], float) for g in groups[1:])  # a YAML 0 becomes 0.0


def test_the_first_matching_pattern_wins_and_no_default_group_when_all_match():
    parameters = named()
    groups = param_groups(parameters, {"layers.0.*": 0.1, "layers.*": 0.2, "head.weight": 0.3})
    assert names_by_group(groups, parameters) == [
        (0.1, ["layers.0.weight", "layers.0.bias"]),
        (0.2, ["layers.1.weight", "layers.1.bias"]),
        (0.3, ["head.weight"]),
    ]


def test_no_patterns_is_one_group_of_every_parameter():
    parameters = named()
    assert names_by_group(param_groups(iter(parameters), {}), parameters) == [(None, NAMES)]


def test_a_pattern_that_matches_nothing_names_the_parameters():
    with pytest.raises(ConfigError) as error:
        param_groups(named(), {"*.bias": 0.5, "bias": 0.1, "emb*": 0.1})
    assert str(error.value) == (
        "optimizer.lr_by_param: bias, emb* matches no parameter; the model's parameters are: "
        + ", ".join(NAMES)
    )


@pytest.mark.parametrize("lr", [-0.1, "0.1", True, math.inf, math.nan, None])
def test_a_learning_rate_that_is_not_a_number_at_least_0_is_a_config_error(lr):
    with pytest.raises(ConfigError) as error:
        param_groups(named(), {"head.weight": lr})
    assert str(error.value) == f"optimizer.lr_by_param.head.weight={lr!r} must be a number >= 0"
