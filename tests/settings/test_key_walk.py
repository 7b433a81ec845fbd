"""Every numeric config key has a range, declared once in `handgrad.settings` and checked before
the run starts: a value out of it is one line naming the key, the value and the range (exit 2),
never a traceback from a library or a check inside a constructor."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf, open_dict

from handgrad.errors import ConfigError
from handgrad.settings import check_settings
from handgrad.settings.callbacks import CALLBACKS
from handgrad.settings.data import DATA_MODULES
from handgrad.settings.model import MODELS
from handgrad.settings.rules import Range
from handgrad.settings.scheduler import SCHEDULER
from helpers.runs import CONF, compose_config, run_script_in_this_process

# The option that puts each table's keys in the config.
MODEL_OPTION = {
    "handgrad.models.linear.LinearRegression": ["model=linear"],
    "handgrad.models.mlp.MLP": ["model=mlp"],
    "handgrad.models.char_rnn.CharRNN": ["model=rnn", "model.cell=scratch"],
    "handgrad.models.gpt.GPT": ["model=gpt"],
}
CALLBACK_OPTION = {"attention_maps": ["model=gpt"]}  # the rest: model=rnn has them all
DATA_OPTION = {
    "handgrad.data.synthetic_regression.RegressionDataModule": ["model=linear"],
    "handgrad.data.synthetic_regression.RandomRegressionDataModule": ["model=mlp"],
    "handgrad.data.synthetic_regression.FixedRegressionDataModule": [
        "model=mlp",
        "data=fixed_regression",
    ],
    "handgrad.data.timemachine.TimeMachineDataModule": ["model=rnn"],
}


def declared_ranges() -> dict[str, tuple[Range, list[str]]]:
    """Every Range rule the settings declare: `key -> (rule, overrides of a config with it)`."""
    found = {}
    for name, rule in SCHEDULER.items():
        found[f"scheduler.{name}"] = (rule, ["scheduler=plateau"])
    for callback, table in CALLBACKS.items():
        for name, rule in table.items():
            found[f"callbacks.{callback}.{name}"] = (
                rule,
                CALLBACK_OPTION.get(callback, ["model=rnn"]),
            )
    for target, (table, _) in MODELS.items():
        for name, rule in table.items():
            found.setdefault(f"model.{name}", (rule, MODEL_OPTION[target]))
    for target, (table, _) in DATA_MODULES.items():
        for name, rule in table.items():
            found.setdefault(f"data.{name}", (rule, DATA_OPTION[target]))
    return {key: found[key] for key in found if isinstance(found[key][0], Range)}


RANGES = declared_ranges()


def out_of_range(allowed: Range):
    """A value the range refuses: below its low end, else above its high end."""
    if allowed.low is not None:
        return int(allowed.low) - 1 if allowed.integer else allowed.low - 0.5
    return int(allowed.high) + 1 if allowed.integer else allowed.high + 0.5


@pytest.mark.parametrize("key", RANGES)
def test_a_value_out_of_each_range_is_one_line_naming_key_value_and_range(key, tmp_path):
    allowed, overrides = RANGES[key]
    cfg = compose_config(overrides, tmp_path)
    bad = out_of_range(allowed)
    with open_dict(cfg):
        OmegaConf.update(cfg, key, bad, force_add=True)
    with pytest.raises(ConfigError) as info:
        check_settings(cfg)
    assert str(info.value) == f"{key}={bad!r} {allowed.complaint()}"


@pytest.mark.parametrize("key", [key for key, (rule, _) in RANGES.items() if rule.nullable])
def test_null_passes_where_the_range_allows_it(key, tmp_path):
    cfg = compose_config([*RANGES[key][1], f"++{key}=null"], tmp_path)
    check_settings(cfg)


def test_a_cosine_schedule_of_zero_epochs_stops_before_the_run(tmp_path):
    """Once a ZeroDivisionError from torch after the first epoch."""
    result = run_script_in_this_process(
        "train.py", "scheduler=cosine", "scheduler.T_max=0", f"paths.root={tmp_path}", cwd=tmp_path
    )
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.splitlines() == [
        "error: scheduler.T_max=0 must be an integer >= 1 (epochs from the start to the floor)"
    ]
    assert not (tmp_path / "runs").exists()


# --- every numeric key of every option is covered -----------------------------------------------

# Values of the data, not settings: any number is a valid one.
DATA_VALUES = {"data.w_true", "data.b_true", "data.x", "data.y"}
MODEL_FOR_DATA = {"timemachine": "rnn", "random_regression": "mlp", "fixed_regression": "mlp"}


def numeric_keys(tree, prefix: str = ""):
    if isinstance(tree, dict):
        for name, value in tree.items():
            yield from numeric_keys(value, f"{prefix}{name}.")
    elif isinstance(tree, int | float) and not isinstance(tree, bool):
        yield prefix[:-1]


def options():
    for group in sorted(p for p in CONF.iterdir() if p.is_dir() and p.name != "hydra"):
        for path in sorted(group.glob("*.yaml")):
            model = MODEL_FOR_DATA.get(path.stem) if group.name == "data" else None
            yield [*([f"model={model}"] if model else []), f"{group.name}={path.stem}"]


def every_numeric_key() -> dict[str, list[str]]:
    """Each numeric setting of every option of every group -> the overrides of an option with it."""
    found = {}
    for overrides in options():
        tree = OmegaConf.to_container(compose_config(overrides, CONF.parent / "x"), resolve=True)
        for key in numeric_keys(tree):
            if key.split(".")[0] in ("hydra", "paths") or key in DATA_VALUES:
                continue
            if not key.startswith("optimizer.lr_by_param."):  # checked as optimizer.lr is
                found.setdefault(key, overrides)
    return found


def refusal(key: str, overrides: list[str], tmp_path) -> str | None:
    """None when -10**9 for `key` is a ConfigError naming it, raised by the settings alone
    (nothing is built: every key is checked in one place, before the run), else what happened."""
    cfg = compose_config(overrides, tmp_path)
    with open_dict(cfg):
        OmegaConf.update(cfg, key, -(10**9))
    try:
        check_settings(cfg)
    except ConfigError as error:
        if str(error).startswith(f"{key}=-1000000000"):
            return None
        return f"{key}: {error}"
    return f"{key}: accepted"


def test_every_numeric_key_of_every_option_refuses_a_wild_value_before_training(tmp_path):
    """-10**9 is out of every setting's range."""
    keys = every_numeric_key()
    assert len(keys) > 30
    problems = [refusal(key, overrides, tmp_path) for key, overrides in keys.items()]
    assert [p for p in problems if p] == [], "\n".join(p for p in problems if p)
