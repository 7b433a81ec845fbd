"""The MLP: its hand backward against autograd, its config, and the seeds' experiments."""

from __future__ import annotations

import json

import lightning as L
import pytest
import torch
from hydra.utils import instantiate
from hypothesis import given, settings
from hypothesis import strategies as st
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from handgrad.errors import ConfigError
from handgrad.gradcheck import compare_gradients, to_dtype
from handgrad.grads.activations import ACTIVATIONS
from handgrad.models.mlp import MLP
from handgrad.run.build import build_model
from handgrad.run.task import train
from handgrad.settings import check_settings
from helpers.runs import compose_config

ACTIVATION_NAMES = sorted(ACTIVATIONS)
REDUCTIONS = ["mean", "sum"]


@pytest.fixture(autouse=True)
def one_torch_thread():
    """These matrices are tiny: one intra-op thread is faster, and far faster on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 6),
    widths=st.lists(st.integers(1, 6), min_size=2, max_size=5),
    activation=st.sampled_from(ACTIVATION_NAMES),
    output_activation=st.sampled_from(ACTIVATION_NAMES),
    bias=st.booleans(),
    reduction=st.sampled_from(["mean", "sum"]),
    scale=st.sampled_from([1.0, 0.5, 3.0]),
    seed=st.integers(0, 2**16),
)
def test_hand_backward_matches_autograd(
    n, widths, activation, output_activation, bias, reduction, scale, seed
):
    torch.manual_seed(seed)
    model = MLP(
        in_features=widths[0],
        out_features=widths[-1],
        hidden=widths[1:-1],
        activation=activation,
        output_activation=output_activation,
        bias=bias,
        init="normal",
        init_std=0.7,
        reduction=reduction,
        scale=scale,
    ).double()
    batch = (torch.randn(n, widths[0]), torch.randn(n, widths[-1]))
    rows = compare_gradients(model, to_dtype(batch, torch.float64))
    assert len(rows) == 1 + len(widths[1:]) * (2 if bias else 1)
    for row in rows:
        assert row.ok(rtol=1e-12, atol=1e-15), row


@pytest.mark.parametrize("output_activation", ACTIVATION_NAMES)
@pytest.mark.parametrize("activation", ACTIVATION_NAMES)
def test_hand_backward_matches_autograd_for_every_activation_pair(activation, output_activation):
    """The property test above on a fixed grid: every (hidden, output) activation pair, with and
    without biases, both reductions and a scale, widths that differ layer to layer (the fast,
    deterministic set `make mutate` runs)."""
    case = ACTIVATION_NAMES.index(activation) * len(ACTIVATION_NAMES)
    case += ACTIVATION_NAMES.index(output_activation)
    torch.manual_seed(case)
    model = MLP(
        in_features=3,
        out_features=2,
        hidden=[5, 4][: 1 + case % 2],
        activation=activation,
        output_activation=output_activation,
        bias=case % 3 != 0,
        init="normal",
        init_std=0.7,
        reduction=REDUCTIONS[case // 2 % 2],
        scale=[1.0, 0.5, 3.0][case // 4 % 3],
    ).double()
    batch = (torch.randn(6, 3, dtype=torch.float64), torch.randn(6, 2, dtype=torch.float64))
    rows = compare_gradients(model, batch)
    assert [row.name for row in rows] == ["(loss)"] + [n for n, _ in model.named_parameters()]
    for row in rows:
        assert row.ok(rtol=1e-12, atol=1e-15), row


def test_parameters_are_named_by_layer_in_nn_linear_layout():
    shapes = {n: tuple(p.shape) for n, p in MLP(3, 2, hidden=[5, 4]).named_parameters()}
    assert shapes == {
        "layers.0.weight": (5, 3),
        "layers.0.bias": (5,),
        "layers.1.weight": (4, 5),
        "layers.1.bias": (4,),
        "layers.2.weight": (2, 4),
        "layers.2.bias": (2,),
    }
    assert [n for n, _ in MLP(3, 2, hidden=[], bias=False).named_parameters()] == [
        "layers.0.weight"
    ]


def test_inits():
    torch.manual_seed(0)
    normal = MLP(1000, 10, hidden=[100], init="normal", init_std=2.0)
    assert normal.layers[0].weight.std().item() == pytest.approx(2.0, rel=0.02)
    assert not normal.layers[0].bias.any()
    default = MLP(1000, 10, hidden=[100])  # nn.Linear's U(-1/sqrt(in), 1/sqrt(in))
    assert default.layers[0].weight.abs().max().item() <= 1000**-0.5
    assert default.layers[1].weight.abs().max().item() > 0.09


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("model.activation=swish", "model.activation='swish' is not one of relu, sigmoid, "),
        ("model.output_activation=soft", "model.output_activation='soft' is not one of relu, "),
        ("model.hidden=[100,0]", "model.hidden=[100, 0] must be a list of layer widths >= 1"),
        ("model.hidden=100", "model.hidden=100 must be a list of layer widths >= 1"),
        ("model.init=xavier", "model.init='xavier' is not one of torch, normal"),
        ("model.init_std=0", "model.init_std=0 must be a number > 0"),
        ("model.bias=maybe", "model.bias='maybe' must be true or false"),
        ("model.reduction=max", "model.reduction='max' is not one of mean, sum"),
    ],
)
def test_bad_config_values_are_one_line_errors(override, message, tmp_path):
    cfg = compose_config(["model=mlp", override], tmp_path)
    with pytest.raises(ConfigError) as error:
        check_settings(cfg)
    assert str(error.value).startswith(message)
    assert "\n" not in str(error.value)


def test_mlp_selects_random_regression_data(tmp_path):
    cfg = compose_config(["model=mlp"], tmp_path)
    assert cfg.data._target_.endswith("RandomRegressionDataModule")


def run_metrics(overrides: list[str], run_dir) -> dict:
    quiet = ["callbacks.progress_bar=null", "++trainer.enable_progress_bar=false"]
    train(compose_config([*overrides, *quiet], run_dir))
    return json.loads((run_dir / "metrics.json").read_text())


def loss_curve(run_dir) -> list[tuple[int, float]]:
    events = EventAccumulator(str(run_dir))
    events.Reload()
    return [(point.step, point.value) for point in events.Scalars("train/loss")]


def test_hand_and_autograd_training_agree_after_100_steps(tmp_path):
    overrides = [
        "model=mlp",
        "data.n_samples=32",
        "data.in_features=8",
        "data.out_features=3",
        "data.batch_size=8",
        "model.hidden=[16,8]",
        "model.activation=tanh",
        "optimizer=adam",
        "optimizer.lr=0.01",
        "trainer.max_epochs=25",  # 4 batches an epoch: 100 steps
        "trainer.check_val_every_n_epoch=25",
    ]
    auto = run_metrics([*overrides, "model.backward=autograd"], tmp_path / "auto")
    hand = run_metrics([*overrides, "model.backward=hand"], tmp_path / "hand")
    assert hand["last/train/loss"] == pytest.approx(auto["last/train/loss"], rel=1e-4)
    assert hand["last/val/loss"] == pytest.approx(auto["last/val/loss"], rel=1e-4)
    assert hand["last/val/loss"] < 0.9 * loss_curve(tmp_path / "auto")[0][1]  # it did train


def initial_loss(overrides: list[str], tmp_path) -> float:
    """The full-batch training loss before the first step, from the weights train() starts with."""
    cfg = compose_config(overrides, tmp_path)
    L.seed_everything(cfg.seed, verbose=False)  # as train() does before building the model
    datamodule = instantiate(cfg.data, _convert_="all")
    model = build_model(cfg, datamodule)
    with torch.no_grad():
        return model.loss(datamodule.train_tensors(), None)[0].item()


def assert_same_curve_and_90_percent_drop(experiment: str, tmp_path) -> None:
    curves = {}
    for backward in ("autograd", "hand"):
        run_dir = tmp_path / backward
        run_metrics([f"experiment={experiment}", f"model.backward={backward}"], run_dir)
        curves[backward] = loss_curve(run_dir)
    auto, hand = curves["autograd"], curves["hand"]
    # One point an epoch (the epoch's mean loss) at its last step: 10 epochs of 50 steps.
    assert [step for step, _ in auto] == [step for step, _ in hand] == list(range(49, 500, 50))
    for (_, a), (_, h) in zip(auto, hand, strict=True):
        assert h == pytest.approx(a, rel=1e-4)
    assert auto[-1][1] <= 0.1 * initial_loss([f"experiment={experiment}"], tmp_path)


def test_seed001_mlp_sgd(tmp_path):
    assert_same_curve_and_90_percent_drop("seed001_mlp", tmp_path)


def test_seed001_mlp_adam(tmp_path):
    assert_same_curve_and_90_percent_drop("seed001_mlp_adam", tmp_path)


def test_seed002_deep_linear_reaches_the_noise_floor(tmp_path):
    cfg = compose_config(["experiment=seed002_deep_linear", "model.backward=hand"], tmp_path)
    datamodule = instantiate(cfg.data, _convert_="all")
    checked = build_model(cfg, datamodule).double()
    batch = to_dtype(next(iter(datamodule.train_dataloader())), torch.float64)
    assert all(row.ok(rtol=1e-12, atol=0.0) for row in compare_gradients(checked, batch))

    metrics = run_metrics(["experiment=seed002_deep_linear", "model.backward=hand"], tmp_path)
    x_val, y_val = datamodule.val_tensors()
    noise_mse = (x_val @ datamodule.w_true + datamodule.b_true - y_val).square().mean().item()
    assert metrics["best/val/mse"] == pytest.approx(noise_mse, rel=0.1)
    # The three layers collapse to one affine map y = x w + b: close to w_true = [2, 1], b = 3.
    state = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    w, b = torch.eye(2), torch.zeros(2)
    for i in range(3):
        weight, bias = state[f"layers.{i}.weight"], state[f"layers.{i}.bias"]
        w, b = w @ weight.T, b @ weight.T + bias
    assert w.squeeze().tolist() == pytest.approx([2.0, 1.0], abs=0.25)
    assert b.item() == pytest.approx(3.0, abs=0.25)


def test_seed000_hand_gradient_and_hand_adam_step_match_torch(tmp_path):
    cfg = compose_config(["experiment=seed000_sigmoid"], tmp_path)
    L.seed_everything(cfg.seed, verbose=False)  # as train() does before building the model
    datamodule = instantiate(cfg.data, _convert_="all")
    model = build_model(cfg, datamodule)
    batch = next(iter(datamodule.train_dataloader()))
    assert torch.equal(batch[0], torch.tensor([[-0.5, 0.1]]))
    assert torch.equal(batch[1], torch.tensor([[0.1, 0.2]]))
    rows = compare_gradients(model.double(), to_dtype(batch, torch.float64))
    assert [row.name for row in rows] == ["(loss)", "layers.0.weight"]
    assert all(row.ok(rtol=1e-12, atol=0.0) for row in rows)

    # Reference: autograd gradient and torch.optim.Adam, from the same initial weights.
    model.float()
    start = model.layers[0].weight.detach().clone()
    reference = torch.optim.Adam(model.parameters(), lr=cfg.optimizer.lr)
    model.loss(batch, None)[0].backward()
    reference.step()

    run_metrics(["experiment=seed000_sigmoid"], tmp_path)  # hand backward + HandAdam, one step
    state = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert state["global_step"] == 1
    trained = state["state_dict"]["layers.0.weight"]
    assert not torch.equal(trained, start)
    torch.testing.assert_close(trained, model.layers[0].weight.detach(), rtol=1e-6, atol=1e-9)
