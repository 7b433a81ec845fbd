"""`group=null` on the command line means what `~group` means: the groups a run can do without are
turned off (the groups it needs are one-line errors: tests/run/test_cli_errors.py)."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from omegaconf import OmegaConf

from handgrad.run.compose import OPTIONAL_GROUPS
from helpers.runs import compose_config, run_script

TINY_RNN = [
    "model=rnn",
    "model.cell=rnn",
    "model.hidden_size=8",
    "model.num_layers=1",
    "data.max_tokens=2000",
    "data.batch_size=8",
    "data.num_steps=16",
    "trainer.max_time=null",
    "trainer.max_epochs=1",
]
RUNS = {
    "rnn-without-scheduler-logger-experiment-search": [
        *TINY_RNN,
        "scheduler=null",
        "logger=null",
        "experiment=null",
        "hparams_search=null",
    ],
    "without-callbacks": ["callbacks=null", "trainer.max_epochs=1"],
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory, time_machine):
    root = tmp_path_factory.mktemp("null_groups")
    data = {"HANDGRAD_DATA": str(time_machine.parent)}

    def run(name):
        overrides = [*RUNS[name], f"paths.root={root / name}"]
        result = run_script("train.py", *overrides, cwd=root, env=data)
        assert result.returncode == 0, result.stderr[-3000:]
        (run_dir,) = (root / name / "runs").glob("*/*")
        return result, run_dir

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(RUNS, pool.map(run, RUNS), strict=True))


def test_null_turns_off_the_scheduler_the_model_picks_and_the_logger(runs):
    result, run_dir = runs["rnn-without-scheduler-logger-experiment-search"]
    config = OmegaConf.load(run_dir / ".hydra" / "config.yaml")
    assert "scheduler" not in config and "logger" not in config
    assert not list(run_dir.glob("events.out.tfevents.*"))
    assert json.loads((run_dir / "metrics.json").read_text())["status"] == "ok"
    assert "tensorboard --logdir" not in result.stdout  # nothing to show


def test_null_callbacks_trains_with_lightnings_defaults(runs):
    _, run_dir = runs["without-callbacks"]
    assert not (run_dir / "checkpoints" / "last.ckpt").exists()  # last.ckpt is a callback's
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["status"] == "ok" and "last" not in metrics["checkpoints"]


@pytest.mark.parametrize("group", OPTIONAL_GROUPS)
def test_null_composes_like_deleting_the_group(group, tmp_path):
    # scheduler: the one model=rnn picks; hparams_search: a search's
    base = {"hparams_search": ["hparams_search=mlp_optuna"], "scheduler": ["model=rnn"]}.get(
        group, []
    )
    as_null = compose_config([*base, f"{group}=null"], tmp_path)
    deleted = compose_config([*base, f"~{group}"], tmp_path)
    assert OmegaConf.to_container(as_null) == OmegaConf.to_container(deleted)
    assert group not in as_null
