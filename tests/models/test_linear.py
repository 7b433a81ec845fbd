"""Linear regression end to end: the seeds' experiments and the training CLI."""

from __future__ import annotations

import json

import pytest
import torch
from hydra.utils import instantiate
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from handgrad.run.build import build_model
from handgrad.run.task import train
from helpers.runs import compose_config, run_script


def scalar_tags(run_dir):
    events = EventAccumulator(str(run_dir))
    events.Reload()
    return set(events.Tags()["scalars"])


def test_train_cli_writes_a_complete_run_dir(tmp_path):
    result = run_script(
        "train.py", "trainer.max_epochs=3", f"paths.root={tmp_path / 'outputs'}", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-2000:]
    (run_dir,) = (tmp_path / "outputs" / "runs").glob("*/*_linear")
    assert {"train/loss", "val/loss", "param/w", "param/b"} <= scalar_tags(run_dir)
    assert (run_dir / "fit.png").stat().st_size > 1000
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert {"train/loss", "val/loss", "time/wall_s", "learned"} <= set(metrics)
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert set(checkpoint["state_dict"]) == {"w", "b"}
    assert checkpoint["hyper_parameters"]["reduction"] == "mean"


def test_hparams_tab_gets_final_metrics_not_placeholders(tmp_path):
    cfg = compose_config(["trainer.max_epochs=2"], tmp_path / "run")
    final_val_loss = train(cfg)
    events = EventAccumulator(str(tmp_path / "run"))
    events.Reload()
    plugin = events.PluginTagToContent("hparams")
    assert "_hparams_/session_start_info" in plugin
    # The HParams tab reads each metric's latest scalar: it must be the real final value.
    val_loss_points = events.Scalars("val/loss")
    assert val_loss_points[-1].value == pytest.approx(final_val_loss, rel=1e-6)
    assert all(point.value != -1 for point in val_loss_points)


def test_seed004_recovers_w_and_b(tmp_path):
    cfg = compose_config(["experiment=seed004_linreg"], tmp_path / "run")
    train(cfg)
    learned = json.loads((tmp_path / "run" / "metrics.json").read_text())["learned"]
    assert learned["w"] == pytest.approx(3.0, abs=0.01)
    assert learned["b"] == pytest.approx(0.8, abs=0.01)


def test_seed002_optimizer_has_two_learning_rates(tmp_path):
    cfg = compose_config(["experiment=seed002_linreg"], tmp_path)
    model = build_model(cfg, instantiate(cfg.data, _convert_="all"))
    optimizer = model.configure_optimizers()
    by_lr = {group["lr"]: group["params"] for group in optimizer.param_groups}
    assert by_lr.keys() == {1e-4, 1e-3}
    assert by_lr[1e-4][0] is model.w and by_lr[1e-3][0] is model.b


def test_lr_by_param_typo_is_a_clear_error(tmp_path):
    result = run_script(
        "train.py", "optimizer.lr_by_param={bias: 0.1}", f"paths.root={tmp_path}", cwd=tmp_path
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "error: optimizer.lr_by_param: bias matches no parameter; the model's parameters are: w, b"
    )


def test_unknown_model_lists_the_available_ones(tmp_path):
    result = run_script("train.py", "model=nope", f"paths.root={tmp_path}", cwd=tmp_path)
    assert result.returncode != 0
    assert "linear" in result.stderr and "nope" in result.stderr
    assert not (tmp_path / "runs").exists()
