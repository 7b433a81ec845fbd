"""TensorBoard dashboards from the callbacks: parameter histograms, learning rates, the Custom
Scalars layout; read back from the event files of tiny real runs."""

from __future__ import annotations

import math

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.custom_scalar import layout_pb2, metadata

from handgrad.callbacks import ParameterHistograms, histogram
from handgrad.errors import ConfigError
from handgrad.run.task import train
from helpers.runs import compose_config

LINEAR = [  # 8 steps per epoch, 2 epochs
    "model=linear",
    "trainer.max_epochs=2",
    "callbacks.progress_bar.refresh_rate=0",
    "device=cpu",
]


def run_events(overrides: list[str], run_dir) -> EventAccumulator:
    """Train a run and load everything its event file holds."""
    train(compose_config(overrides, run_dir))
    events = EventAccumulator(str(run_dir), size_guidance={"histograms": 0, "tensors": 0})
    events.Reload()
    return events


def layout(events: EventAccumulator) -> dict[str, dict[str, list[str]]]:
    """The run's Custom Scalars layout as {category: {chart: tag regexes}}."""
    (config,) = events.Tensors(metadata.CONFIG_SUMMARY_TAG)
    proto = layout_pb2.Layout.FromString(config.tensor_proto.string_val[0])
    return {
        category.title: {chart.title: list(chart.multiline.tag) for chart in category.chart}
        for category in proto.category
    }


# --- histograms ---------------------------------------------------------------------------------


def test_histogram_counts_every_value_into_equal_buckets_from_min_to_max():
    values = torch.tensor([[-1.0, 0.0, 0.5], [1.0, 3.0, 3.0]])
    summary = histogram(values, bins=4)
    assert (summary["min"], summary["max"], summary["num"]) == (-1.0, 3.0, 6)
    assert summary["sum"] == 6.5 and summary["sum_squares"] == 20.25
    assert summary["bucket_limits"] == [-1.0, 0.0, 1.0, 2.0, 3.0]  # right edges; the first: min
    assert summary["bucket_counts"] == [0.0, 1.0, 2.0, 1.0, 2.0]  # [-1, 0), [0, 1), ...


def test_histogram_of_equal_values_and_of_non_finite_ones():
    zeros = histogram(torch.zeros(5), bins=2)
    assert zeros["bucket_limits"] == [-0.5, 0.0, 0.5] and zeros["bucket_counts"] == [0.0, 0.0, 5.0]
    mixed = histogram(torch.tensor([1.0, math.nan, 2.0, math.inf]), bins=1)
    assert (mixed["num"], mixed["min"], mixed["max"]) == (2, 1.0, 2.0)
    assert histogram(torch.tensor([math.nan, -math.inf]), bins=4) is None
    assert histogram(torch.tensor([1.0, 2.0, 3.0]), bins=30)["bucket_counts"] == [0, 1, 1, 1]


def test_cadence_must_be_a_count():
    with pytest.raises(ConfigError, match=r"callbacks.histograms.every_n_steps=-1 .* \(0: off\)"):
        ParameterHistograms(every_n_steps=-1)


@pytest.mark.parametrize("backward", ["autograd", "hand"])
def test_weights_and_gradients_every_n_steps_in_both_backward_modes(tmp_path, backward):
    events = run_events(
        [*LINEAR, f"model.backward={backward}", "callbacks.histograms.every_n_steps=5"], tmp_path
    )
    tags = events.Tags()["histograms"]
    assert sorted(tags) == ["grads/b", "grads/w", "weights/b", "weights/w"]
    for tag in tags:
        assert [point.step for point in events.Histograms(tag)] == [0, 5, 10, 15]
    first_weight = events.Histograms("weights/b")[0].histogram_value
    assert (first_weight.min, first_weight.max, first_weight.num) == (0.0, 0.0, 1)  # b starts at 0
    assert events.Histograms("grads/w")[0].histogram_value.min != 0.0


# --- learning rate and the Custom Scalars layout ------------------------------------------------


def test_learning_rate_of_every_epoch_and_of_every_parameter_group(tmp_path):
    events = run_events([*LINEAR, "scheduler=cosine", "trainer.max_epochs=3"], tmp_path / "one")
    lrs = [(point.step, point.value) for point in events.Scalars("optim/lr")]
    assert [step for step, _ in lrs] == [0, 8, 16]
    assert lrs[0][1] == pytest.approx(0.1) and lrs[0][1] > lrs[1][1] > lrs[2][1]
    groups = run_events([*LINEAR, "optimizer.lr_by_param={b:0.5}"], tmp_path / "groups")
    assert {"optim/lr/pg1", "optim/lr/pg2"} <= set(groups.Tags()["scalars"])
    assert groups.Scalars("optim/lr/pg2")[0].value == 0.5


def test_layout_charts_what_the_run_logs(tmp_path):
    plain = layout(run_events(LINEAR, tmp_path / "plain"))
    assert plain == {
        "train vs val": {"loss": ["train/loss$", "val/loss$"]},
        "optimization": {"learning rate": ["optim/lr"]},
    }
    checked = layout(
        run_events(
            [*LINEAR, "model.clip_grad_norm=1.0", "callbacks.gradcheck.every_n_steps=4"],
            tmp_path / "checked",
        )
    )
    assert checked["optimization"]["gradient norm (before clipping)"] == ["grad/norm$"]
    assert checked["gradient check"] == {
        "hand vs autograd": ["gradcheck/max_abs_err$", "gradcheck/max_rel_err$"]
    }
