"""The one-line error `handgrad.settings` gives for a config with some keys set to given values."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf, open_dict

from handgrad.errors import ConfigError
from handgrad.settings import check_settings
from helpers.runs import compose_config


def settings_error(overrides: list[str], values: dict[str, object]) -> str:
    """The ConfigError's message for the config of `overrides` with `values` (dotted key ->
    value, set after composing, so a value needs no command-line quoting)."""
    cfg = compose_config(overrides, Path("outputs"))
    with open_dict(cfg):
        for key, value in values.items():
            OmegaConf.update(cfg, key, value, force_add=True)
    with pytest.raises(ConfigError) as caught:
        check_settings(cfg)
    return str(caught.value)
