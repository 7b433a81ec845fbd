"""The gradient check: its comparison, the CLI's exit codes, and the training callback."""

from __future__ import annotations

import math

import pytest
import torch
from hydra import compose, initialize_config_dir
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from handgrad.errors import ConfigError
from handgrad.gradcheck import compare_gradients, gradcheck, to_dtype
from handgrad.models.mlp import MLP
from handgrad.run.task import train
from helpers.runs import CONF, HELPERS, compose_config, run_script
from helpers.settings_errors import settings_error

SMALL_MLP = ["model=mlp", "data.n_samples=9", "data.in_features=7", "data.out_features=3"]


def test_cli_passes_for_linear_and_writes_nothing(tmp_path):
    result = run_script("gradcheck.py", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    names = [line.split()[0] for line in result.stdout.splitlines()[1:-1]]
    assert names == ["(loss)", "w", "b"]
    assert "gradcheck passed" in result.stdout
    assert list(tmp_path.iterdir()) == []  # no run dir, no .hydra, no log file


def gradcheck_of(overrides: list[str], capsys) -> tuple[bool, str]:
    """`scripts/gradcheck.py <overrides>` in this process: passed, and the printed table."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name="gradcheck", overrides=overrides)
    passed = gradcheck(cfg)
    return passed, capsys.readouterr().out


def test_passes_for_an_mlp_variant(capsys):
    variant = [
        "model.hidden=[6,5]",
        "model.activation=tanh",
        "model.output_activation=sigmoid",
        "model.bias=false",
        "model.reduction=sum",
    ]
    passed, out = gradcheck_of([*SMALL_MLP, *variant], capsys)
    assert passed, out
    for name in ("layers.0.weight", "layers.1.weight", "layers.2.weight"):
        assert name in out
    assert "bias" not in out


def test_fails_for_a_wrong_backward(capsys, monkeypatch):
    monkeypatch.syspath_prepend(str(HELPERS))
    passed, out = gradcheck_of(
        [*SMALL_MLP, "model._target_=wrong_backward.MLPWithoutFactorTwo"], capsys
    )
    assert not passed, out
    last = out.strip().splitlines()[-1]
    assert last.startswith("gradcheck FAILED")
    assert "layers.0.weight" in last and "(loss)" not in last


@pytest.mark.corpus
def test_cli_fails_for_a_wrong_gate_derivative(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(HELPERS))
    target = "model._target_=wrong_gate.LSTMWithWrongForgetGate"
    small = ["model.hidden_size=8", "data.batch_size=4", "data.num_steps=6"]
    # scheduler=null (model=rnn picks one) is taken as ~scheduler, as train.py takes it
    result = run_script("gradcheck.py", "model=rnn", "scheduler=null", *small, target, cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr[-2000:]
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("gradcheck FAILED")
    assert "net.rnn.weight_hh_l0" in last and "net.rnn.bias_ih_l1" in last  # both LSTM layers
    assert "(loss)" not in last and "net.head" not in last  # the forward and the head are right


def test_unknown_dtype_is_a_config_error():
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name="gradcheck", overrides=["gradcheck.dtype=float16"])
    with pytest.raises(
        ConfigError, match=r"^gradcheck.dtype='float16' is not one of float64, float32$"
    ):
        gradcheck(cfg)


class _DropsAGradient(MLP):
    def hand_loss_and_grads(self, batch, state):
        loss, grads, state = super().hand_loss_and_grads(batch, state)
        grads["layers.0.extra"] = grads.pop("layers.0.bias")
        return loss, grads, state


def test_a_missing_or_unknown_gradient_is_an_infinite_error():
    model = _DropsAGradient(in_features=3, out_features=2, hidden=[4]).double()
    batch = (torch.randn(5, 3, dtype=torch.float64), torch.randn(5, 2, dtype=torch.float64))
    rows = {row.name: row for row in compare_gradients(model, batch)}
    assert rows["layers.0.bias"].max_abs_err == math.inf
    assert rows["layers.0.extra"].max_rel_err == math.inf
    assert not rows["layers.0.bias"].ok(rtol=1e-8, atol=0.0)
    assert rows["layers.1.weight"].ok(rtol=1e-12, atol=0.0)


def test_to_dtype_converts_only_floating_point_tensors():
    tokens = torch.tensor([1, 2, 3])
    batch = {"x": [torch.ones(2), tokens], "y": (torch.zeros(1, dtype=torch.float32),)}
    converted = to_dtype(batch, torch.float64)
    assert converted["x"][0].dtype == torch.float64
    assert converted["x"][1] is tokens
    assert isinstance(converted["y"], tuple) and converted["y"][0].dtype == torch.float64


def test_callback_logs_errors_to_tensorboard(tmp_path):
    cfg = compose_config(
        [
            *SMALL_MLP,
            "model.backward=hand",
            "trainer.max_epochs=7",
            "callbacks.gradcheck.every_n_steps=3",
            "callbacks.progress_bar=null",
        ],
        tmp_path,
    )
    train(cfg)
    events = EventAccumulator(str(tmp_path))
    events.Reload()
    for tag in ("gradcheck/max_abs_err", "gradcheck/max_rel_err"):
        points = events.Scalars(tag)
        assert [p.step for p in points] == [0, 3, 6]
        assert all(0 <= p.value < 1e-5 for p in points)  # float32 round-off, not a bug


def test_callback_rejects_a_negative_interval():
    message = settings_error(["model=mlp"], {"callbacks.gradcheck.every_n_steps": -1})
    assert message == "callbacks.gradcheck.every_n_steps=-1 must be an integer >= 0 (0: off)"
