"""TensorBoard as a run writes it, read back from the event files of tiny real runs: the groups and
steps of every scalar, parameter histograms, learning rates, text samples, the Custom Scalars
layout, the HParams session; and how a sweep's jobs are named."""

from __future__ import annotations

import math

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.custom_scalar import layout_pb2, metadata
from tensorboard.plugins.hparams import plugin_data_pb2

from handgrad.callbacks import histogram
from handgrad.run.job_names import shared_keys
from handgrad.run.task import train
from helpers.runs import compose_config
from helpers.settings_errors import settings_error

QUIET = ["callbacks.progress_bar.refresh_rate=0", "device=cpu"]
LINEAR = ["model=linear", "trainer.max_epochs=2", *QUIET]  # 8 steps an epoch
# 4 steps an epoch; layers.0.weight (15 values) and layers.1.weight (10) get histograms, the
# biases (5 and 2 values) do not.
MLP = ["model=mlp", "model.hidden=[5]", "data.n_samples=16", "data.in_features=3"]
MLP += ["data.out_features=2", "data.batch_size=4", "trainer.max_epochs=2", *QUIET]
TINY_RNN = [  # 6 steps an epoch
    "model=rnn", "model.cell=scratch", "model.hidden_size=16", "data.max_tokens=1000",
    "data.batch_size=8", "data.num_steps=16", "trainer.max_time=null", "trainer.max_epochs=3",
    "callbacks.early_stopping=null", "callbacks.text_sample.every_n_epochs=2",
    "callbacks.text_sample.num_chars=10", "callbacks.histograms.every_n_steps=0", *QUIET,
]  # fmt: skip


def run_events(overrides: list[str], run_dir) -> EventAccumulator:
    """Train a run and load everything its event files hold."""
    train(compose_config(overrides, run_dir))
    events = EventAccumulator(str(run_dir), size_guidance={"histograms": 0, "tensors": 0})
    events.Reload()
    return events


def steps(events: EventAccumulator, tag: str) -> list[int]:
    return [point.step for point in events.Scalars(tag)]


def layout(events: EventAccumulator) -> dict[str, dict[str, list[str]]]:
    """The run's Custom Scalars layout as {category: {chart: tag regexes}}."""
    (config,) = events.Tensors(metadata.CONFIG_SUMMARY_TAG)
    proto = layout_pb2.Layout.FromString(config.tensor_proto.string_val[0])
    return {
        category.title: {chart.title: list(chart.multiline.tag) for chart in category.chart}
        for category in proto.category
    }


def session_start(events: EventAccumulator) -> plugin_data_pb2.SessionStartInfo:
    content = events.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    return plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info


# --- what a run writes, and at which steps -------------------------------------------------------


def test_every_scalar_is_a_train_val_or_weights_curve_with_one_step_per_epoch_end(tmp_path):
    """The groups TensorBoard opens first are train and val; Lightning's epoch counter is not
    written; an epoch's points, its weights and the best checkpoint's metrics share its end step."""
    events = run_events(LINEAR, tmp_path)
    assert set(events.Tags()["scalars"]) == {
        *("train/loss", "train/lr", "val/loss", "val/loss/best", "weights/w", "weights/b"),
    }
    assert events.Tags()["histograms"] == []  # w and b have one value each: scalars only
    assert events.Tags()["images"] == ["weights/fit"]
    for tag in ("train/loss", "train/lr", "val/loss", "weights/w", "weights/b"):
        assert steps(events, tag) == [7, 15], tag
    (best,) = events.Scalars("val/loss/best")
    assert best.step in (7, 15) and best.value == min(p.value for p in events.Scalars("val/loss"))
    assert [image.step for image in events.Images("weights/fit")] == [15]


def test_a_run_writes_one_event_file_and_its_resume_one_more(tmp_path):
    """What is written after fitting (the best checkpoint's points, the HParams summary) goes into
    the fit's own file: a second file opened in the same second could be read first (names sort
    writer 10 before writer 9) and a resumed run's purge, read after it, would drop its points."""
    run_events(LINEAR, tmp_path)
    assert len(list(tmp_path.glob("events.out.tfevents.*"))) == 1
    ckpt = tmp_path / "checkpoints" / "last.ckpt"
    train(compose_config([*LINEAR, "trainer.max_epochs=3", f"ckpt_path={ckpt}"], tmp_path))
    assert len(list(tmp_path.glob("events.out.tfevents.*"))) == 2


def test_val_mse_is_written_only_where_it_differs_from_val_loss(tmp_path):
    summed = run_events([*LINEAR, "model.reduction=sum"], tmp_path)
    assert {"val/mse", "val/mse/best"} <= set(summed.Tags()["scalars"])
    assert summed.Scalars("val/mse")[-1].value < summed.Scalars("val/loss")[-1].value


# --- histograms ----------------------------------------------------------------------------------


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
    message = settings_error(["model=mlp"], {"callbacks.histograms.every_n_steps": -1})
    assert message == "callbacks.histograms.every_n_steps=-1 must be an integer >= 0 (0: off)"


@pytest.mark.parametrize("backward", ["autograd", "hand"])
def test_histograms_at_the_first_and_last_step_and_every_n_between(tmp_path, backward):
    events = run_events(
        [*MLP, f"model.backward={backward}", "callbacks.histograms.every_n_steps=3"], tmp_path
    )
    tags = events.Tags()["histograms"]
    weights = [f"weights/layers.{i}.weight" for i in (0, 1)]
    assert sorted(tags) == sorted([*weights, *(f"{tag}/grad" for tag in weights)])
    for tag in tags:
        assert [point.step for point in events.Histograms(tag)] == [0, 3, 6, 7]
    first_grad = events.Histograms("weights/layers.0.weight/grad")[0].histogram_value
    assert first_grad.num == 15 and first_grad.min < first_grad.max


def test_a_run_that_ends_at_its_step_budget_has_its_last_steps_histograms(tmp_path):
    overrides = [*MLP, "trainer.max_steps=6", "callbacks.histograms.every_n_steps=4"]
    events = run_events(overrides, tmp_path)
    assert [p.step for p in events.Histograms("weights/layers.1.weight")] == [0, 4, 5]


def test_a_run_stopped_early_has_its_last_steps_histograms(tmp_path):
    """Early stopping ends this run after its first epoch of two (any val/loss is below the
    threshold): the copy of that epoch's last step is written when training ends."""
    stop = "+callbacks.early_stopping"
    overrides = [
        *(f"{stop}._target_=lightning.pytorch.callbacks.EarlyStopping", f"{stop}.monitor=val/loss"),
        f"{stop}.stopping_threshold=1e9",
    ]
    events = run_events([*MLP, *overrides], tmp_path)
    assert [p.step for p in events.Histograms("weights/layers.1.weight")] == [0, 3]


# --- learning rate, text samples, the Custom Scalars layout --------------------------------------


def test_learning_rate_of_every_epoch_and_of_every_parameter_group(tmp_path):
    events = run_events([*LINEAR, "scheduler=cosine", "trainer.max_epochs=3"], tmp_path / "one")
    lrs = [(point.step, point.value) for point in events.Scalars("train/lr")]
    assert [step for step, _ in lrs] == [7, 15, 23]  # the lr each epoch trained with, at its end
    assert lrs[0][1] == pytest.approx(0.1) and lrs[0][1] > lrs[1][1] > lrs[2][1]
    groups = run_events([*LINEAR, "optimizer.lr_by_param={b:0.5}"], tmp_path / "groups")
    assert {"train/lr/pg1", "train/lr/pg2"} <= set(groups.Tags()["scalars"])
    assert groups.Scalars("train/lr/pg2")[0].value == 0.5


def test_layout_charts_what_the_run_logs(tmp_path):
    plain = layout(run_events(LINEAR, tmp_path / "plain"))
    assert plain == {
        "train vs val": {"loss (squared error)": ["train/loss$", "val/loss$"]},
        "optimization": {"learning rate": ["train/lr"]},
    }
    checked = layout(
        run_events(
            [*LINEAR, "model.clip_grad_norm=1.0", "callbacks.gradcheck.every_n_steps=4"],
            tmp_path / "checked",
        )
    )
    assert checked["optimization"]["gradient norm (before clipping)"] == ["weights/grad_norm$"]
    assert checked["gradient check"] == {
        "hand vs autograd": ["gradcheck/max_abs_err$", "gradcheck/max_rel_err$"]
    }


@pytest.mark.corpus
def test_a_language_model_has_perplexity_curves_and_a_sample_of_its_final_weights(tmp_path):
    events = run_events(TINY_RNN, tmp_path)
    assert set(events.Tags()["scalars"]) == {"train/ppl", "train/lr", "val/ppl", "val/ppl/best"}
    assert steps(events, "train/ppl") == steps(events, "val/ppl") == [5, 11, 17]
    samples = events.Tensors("sample/text_summary")
    assert [sample.step for sample in samples] == [11, 17]  # every 2 epochs, and at the end
    assert layout(events)["train vs val"] == {"perplexity": ["train/ppl$", "val/ppl$"]}


# --- HParams and sweep job names -----------------------------------------------------------------


def test_hparams_lists_what_runs_are_compared_by_under_a_short_trial_name(tmp_path):
    """A run of 3 full-batch steps (fewer than trainer.log_every_n_steps) has its train/loss."""
    run_dir = tmp_path / "sweep" / "3_model=mlp"
    overrides = [*MLP, "data.batch_size=null", "trainer.max_epochs=3", "optimizer.lr=0.05"]
    events = run_events(overrides, run_dir)
    assert steps(events, "train/loss") == [0, 1, 2]
    session = session_start(events)
    assert session.group_name == "3_model=mlp (sweep)"
    params = {key: value.WhichOneof("kind") for key, value in session.hparams.items()}
    assert {"model.hidden", "model.backward", "optimizer.lr", "data.batch_size", "seed"} <= set(
        params
    )
    assert session.hparams["optimizer.lr"].number_value == 0.05
    assert session.hparams["model.hidden"].string_value == "[5]"
    assert session.hparams["data.batch_size"].string_value == "null"
    assert len(params) <= 25
    assert not [key for key in params if key.endswith(("_target_", "dir", "dirpath", "path"))]
    paths = [v.string_value for v in session.hparams.values() if "/" in v.string_value]
    assert paths == []


def test_a_sweep_job_is_named_by_the_overrides_it_does_not_share():
    overrides = ["model=linear,mlp", "optimizer=sgd,adam", "trainer.max_epochs=5", "+x.y=1"]
    assert shared_keys(overrides) == ["trainer.max_epochs", "x.y"]
    assert shared_keys(["model=mlp", "trainer.max_epochs=5"]) == []  # no sweep: names as they are
