"""Every config file in every group composes, and its objects instantiate."""

from __future__ import annotations

import pytest
from hydra.utils import instantiate

from handgrad.run.build import build_model
from helpers.runs import CONF, compose_config

GROUP_OPTIONS = [
    (group.name, path.stem)
    for group in sorted(CONF.iterdir())
    if group.is_dir()
    for path in sorted(group.glob("*.yaml"))
]


def test_every_group_has_options():
    groups = {group for group, _ in GROUP_OPTIONS}
    assert {"model", "data", "optimizer", "device", "logger", "callbacks", "experiment"} <= groups


# A data option is composed with a model that can read it (the default model is linear).
MODEL_FOR_DATA = {"timemachine": "rnn", "random_regression": "mlp", "fixed_regression": "mlp"}


@pytest.mark.parametrize(("group", "option"), GROUP_OPTIONS)
def test_option_composes_and_instantiates(group, option, tmp_path, request):
    model = MODEL_FOR_DATA.get(option, "linear") if group == "data" else None
    overrides = [f"model={model}"] if model else []
    cfg = compose_config([*overrides, f"{group}={option}"], tmp_path)
    if cfg.data._target_.endswith("TimeMachineDataModule"):
        request.getfixturevalue("corpus_env")
    datamodule = instantiate(cfg.data, _convert_="all")
    model = build_model(cfg, datamodule)
    model.configure_optimizers()
    for callback in cfg.callbacks.values():
        if callback:
            instantiate(callback)
    assert set(cfg.trainer) >= {"accelerator", "devices", "precision", "max_epochs"}


@pytest.mark.parametrize(
    ("model", "data_target"),
    [
        ("linear", "RegressionDataModule"),
        ("mlp", "RandomRegressionDataModule"),
        ("rnn", "TimeMachineDataModule"),
    ],
)
def test_model_selects_its_data_and_data_still_overrides(model, data_target, tmp_path):
    cfg = compose_config([f"model={model}"], tmp_path)
    assert cfg.data._target_.endswith(data_target)
    cfg = compose_config([f"model={model}", "data=fixed_regression"], tmp_path)
    assert cfg.data._target_.endswith("FixedRegressionDataModule")
