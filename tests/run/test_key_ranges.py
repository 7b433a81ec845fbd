"""Every numeric config key has a range that is checked before the run starts: a value out of it is
one line naming the key, the value and the range (exit 2), never a traceback from a library."""

from __future__ import annotations

import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf, open_dict

from handgrad.errors import ConfigError, find_user_error, first_line
from handgrad.run.build import build_model
from handgrad.run.checks import check_config
from handgrad.run.key_ranges import RANGES, Range
from helpers.runs import CONF, compose_config, run_script_in_this_process

# A config that has the key (or may take it with +key=...).
BASE = {
    "scheduler.T_max": ["scheduler=cosine"],
    "scheduler.eta_min": ["scheduler=cosine"],
    "callbacks.text_sample": ["model=rnn"],
    "callbacks.early_stopping": ["model=rnn"],
    "model.init_std": ["model=rnn", "model.cell=scratch"],
    "model.embedding_dim": ["model=rnn"],
    "scheduler.": ["scheduler=plateau"],
}


def base_overrides(key: str) -> list[str]:
    return next((o for prefix, o in BASE.items() if key.startswith(prefix)), [])


def out_of_range(allowed: Range):
    """A value the range refuses: below its low end, else above its high end."""
    if allowed.low is not None:
        return int(allowed.low) - 1 if allowed.integer else allowed.low - 0.5
    return int(allowed.high) + 1 if allowed.integer else allowed.high + 0.5


@pytest.mark.parametrize("key", RANGES)
def test_a_value_out_of_each_range_is_one_line_naming_key_value_and_range(key, tmp_path):
    cfg = compose_config(base_overrides(key), tmp_path)
    bad = out_of_range(RANGES[key])
    with open_dict(cfg):
        OmegaConf.update(cfg, key, bad, force_add=True)
    with pytest.raises(ConfigError) as info:
        check_config(cfg)
    assert str(info.value) == f"{key}={bad!r} must be {RANGES[key].describe()}"


@pytest.mark.parametrize(("key", "good"), [(key, r) for key, r in RANGES.items() if r.nullable])
def test_null_passes_where_the_range_allows_it(key, good, tmp_path):
    cfg = compose_config([*base_overrides(key), f"+{key}=null"], tmp_path)
    check_config(cfg)


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
    """None when -10**9 for `key` is a ConfigError naming it, else what happened instead. The
    key's own class may be the one to check it (models and data check theirs when built): the
    run's parts are built, as `train` builds them first."""
    cfg = compose_config(overrides, tmp_path)
    with open_dict(cfg):
        OmegaConf.update(cfg, key, -(10**9))
    try:
        check_config(cfg)
        datamodule = instantiate(cfg.data, _convert_="all")
        build_model(cfg, datamodule).configure_optimizers()
        for callback in cfg.callbacks.values():
            if callback:
                instantiate(callback)
    except Exception as exc:  # instantiate wraps a constructor's ConfigError
        error = find_user_error(exc)
        if isinstance(error, ConfigError) and str(error).startswith(f"{key}=-1000000000"):
            return None
        return f"{key}: {type(exc).__name__}: {first_line(exc)}"
    return f"{key}: accepted"


@pytest.mark.slow
@pytest.mark.corpus
def test_every_numeric_key_of_every_option_refuses_a_wild_value_before_training(tmp_path):
    """-10**9 is out of every setting's range."""
    keys = every_numeric_key()
    assert len(keys) > 30
    problems = [refusal(key, overrides, tmp_path) for key, overrides in keys.items()]
    assert [p for p in problems if p] == [], "\n".join(p for p in problems if p)
