"""check_optimizer_settings on its own: each rule at its boundary, and absent settings unchecked.

It runs on the composed config (where an optimizer has only its own keys) and in the hand
optimizers' constructors; the constructors' messages are in test_hand_optimizers.py.
"""

from __future__ import annotations

import math

import pytest

from handgrad.errors import ConfigError
from handgrad.settings.optimizer import check_optimizer_settings


@pytest.mark.parametrize(
    "settings",
    [
        {"lr": 0.1},  # every other setting absent
        {"lr": 1, "momentum": 0, "dampening": 0, "weight_decay": 0, "eps": 0},
        {"lr": 0.1, "betas": (0.0, 0.0), "amsgrad": True},
        {"lr": 0.1, "betas": [0.9, 0.999], "amsgrad": False},
        {"lr": 0.1, "momentum": 0.9, "nesterov": True},  # dampening absent: 0
        {"lr": 0.1, "momentum": 0.9, "dampening": 0.0, "nesterov": True},
        {"lr": 0.1, "momentum": 0.0, "dampening": 0.5, "nesterov": False},
    ],
)
def test_settings_within_bounds_pass(settings):
    check_optimizer_settings(settings)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({}, "optimizer.lr=None: the learning rate must be a number > 0"),
        ({"lr": 0}, "optimizer.lr=0: the learning rate must be a number > 0"),
        ({"lr": "0.1"}, "optimizer.lr='0.1': the learning rate must be a number > 0"),
        ({"lr": math.inf}, "optimizer.lr=inf: the learning rate must be a number > 0"),
        ({"lr": 0.1, "dampening": -0.1}, "optimizer.dampening=-0.1 must be a number in [0, 1]"),
        ({"lr": 0.1, "eps": None}, "optimizer.eps=None must be a number >= 0"),
        ({"lr": 0.1, "momentum": True}, "optimizer.momentum=True must be a number >= 0"),
        ({"lr": 0.1, "betas": [0.9]}, "optimizer.betas=[0.9] must be two numbers in [0, 1)"),
        ({"lr": 0.1, "betas": (-0.1, 0.9)}, "optimizer.betas=[-0.1, 0.9] must be two numbers"),
        ({"lr": 0.1, "betas": (0.9, 0.9, 0.9)}, "optimizer.betas=[0.9, 0.9, 0.9] must be two"),
        ({"lr": 0.1, "betas": ("0.9", 0.9)}, "optimizer.betas=['0.9', 0.9] must be two numbers"),
        ({"lr": 0.1, "amsgrad": "yes"}, "optimizer.amsgrad='yes' must be true or false"),
        ({"lr": 0.1, "nesterov": 1}, "optimizer.nesterov=1 must be true or false"),
        (
            {"lr": 0.1, "nesterov": True},  # momentum absent: 0
            "optimizer.nesterov=true needs optimizer.momentum > 0 and optimizer.dampening=0, "
            "got momentum=0.0, dampening=0.0",
        ),
        (
            {"lr": 0.1, "nesterov": True, "momentum": 0.5, "dampening": 0.5},
            "optimizer.nesterov=true needs optimizer.momentum > 0 and optimizer.dampening=0, "
            "got momentum=0.5, dampening=0.5",
        ),
    ],
)
def test_a_setting_out_of_bounds_is_one_config_error_naming_it(settings, message):
    with pytest.raises(ConfigError) as error:
        check_optimizer_settings(settings)
    assert str(error.value).startswith(message)
