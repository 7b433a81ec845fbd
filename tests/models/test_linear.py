"""Linear regression: its hand gradients, the seeds' experiments end to end, the training CLI."""

from __future__ import annotations

import json

import pytest
import torch
from hydra.utils import instantiate
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from handgrad.errors import ConfigError
from handgrad.gradcheck import compare_gradients
from handgrad.models.linear import LinearRegression
from handgrad.run.build import build_model
from handgrad.run.task import train
from helpers.runs import compose_config, run_script


@pytest.mark.parametrize(("reduction", "scale"), [("mean", 1.0), ("sum", 0.5), ("mean", 3.0)])
def test_hand_gradients_equal_autograd(reduction, scale):
    """dL/dw = X^T G and dL/db = sum_n G[n] against autograd, for a map of 3 inputs to 2 outputs
    (a w that is not square and a b of two entries, so a transpose or a wrong sum shows)."""
    torch.manual_seed(0)
    model = LinearRegression(3, 2, init_std=1.0, reduction=reduction, scale=scale).double()
    batch = (torch.randn(5, 3, dtype=torch.float64), torch.randn(5, 2, dtype=torch.float64))
    rows = compare_gradients(model, batch)
    assert [row.name for row in rows] == ["(loss)", "w", "b"]
    assert all(row.ok(rtol=1e-12, atol=0.0) for row in rows), rows
    assert model.w.shape == (3, 2) and model.b.shape == (2,) and not model.b.any()


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
    assert {"train/loss", "val/loss", "weights/w", "weights/b"} <= scalar_tags(run_dir)
    assert (run_dir / "fit.png").stat().st_size > 1000
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert {"last/train/loss", "best/val/loss", "time/wall_s", "learned"} <= set(metrics)
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert set(checkpoint["state_dict"]) == {"w", "b"}
    assert checkpoint["hyper_parameters"]["reduction"] == "mean"


def test_curves_show_training_and_hparams_gets_the_best_checkpoints_metrics(tmp_path):
    cfg = compose_config(["trainer.max_epochs=3", "optimizer.lr=0.5"], tmp_path / "run")
    returned = train(cfg)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    events = EventAccumulator(str(tmp_path / "run"))
    events.Reload()
    # One val/loss point per epoch trained: validating the best checkpoint adds none.
    val_loss = events.Scalars("val/loss")
    assert len(val_loss) == 3
    assert val_loss[-1].value == pytest.approx(metrics["last/val/loss"], rel=1e-6)
    # HParams reads each scalar tag's last value: val/loss/best at the best checkpoint's epoch
    # end step (its last optimizer step's index, where that epoch's val/loss point is).
    best = metrics["checkpoints"]["best"]
    (point,) = events.Scalars("val/loss/best")
    assert (point.step, point.value) == (best["step"] - 1, pytest.approx(returned, rel=1e-6))
    assert returned == metrics["best/val/loss"] == min(p.value for p in val_loss)
    plugin = events.PluginTagToContent("hparams")
    assert "_hparams_/session_start_info" in plugin
    # No experiment summary: TensorBoard then lists every run's metrics, not one run's.
    assert "_hparams_/experiment" not in plugin


@pytest.mark.slow  # 5000 steps
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
    cfg = compose_config(["optimizer.lr_by_param={bias: 0.1}"], tmp_path)
    with pytest.raises(ConfigError) as caught:
        train(cfg)
    assert str(caught.value) == (
        "optimizer.lr_by_param: bias matches no parameter; the model's parameters are: w, b"
    )
