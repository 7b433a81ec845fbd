"""A real `tensorboard` server over one logdir of tiny real runs (a char-RNN run, a linear run, a
2 x 2 sweep: tests/helpers/tensorboard_logdir.py), read through its HTTP API as the browser reads
it: the runs and their names, every tag's group and steps, histograms, text samples, the Custom
Scalars charts and the curves they match, the HParams experiment and its sessions."""

from __future__ import annotations

from functools import partial

import pytest

from helpers.tensorboard_logdir import fetch, make_logdir, tensorboard_server

pytestmark = pytest.mark.slow  # six runs and a server: ~30 s on an idle 2-core CPU

LSTM_PARAMETERS = [  # model=rnn: its embedding, two LSTM layers, the head
    "net.embedding.weight",
    *(f"net.rnn.{kind}_l{layer}" for layer in (0, 1) for kind in ("weight_ih", "weight_hh")),
    *(f"net.rnn.{kind}_l{layer}" for layer in (0, 1) for kind in ("bias_ih", "bias_hh")),
    "net.head.weight",
    "net.head.bias",
]


@pytest.fixture(scope="module")
def tensorboard(tmp_path_factory, time_machine):
    """`get(route, body=None, **query)`: the JSON the server answers."""
    logdir = make_logdir(tmp_path_factory.mktemp("tensorboard"), time_machine.parent)
    log = tmp_path_factory.mktemp("server") / "tensorboard.log"
    with tensorboard_server(logdir, log) as base:
        yield partial(fetch, base)


@pytest.fixture(scope="module")
def runs(tensorboard) -> dict[str, str]:
    """{'rnn' | 'linear' | the sweep job's own overrides: TensorBoard's run name}."""
    names = tensorboard("data/runs")
    assert len(names) == 6
    return {name.rsplit("/", 1)[-1].split("_", 1)[1]: name for name in names}


def test_sweep_jobs_are_named_by_their_own_overrides(runs):
    assert set(runs) == {
        "rnn",
        "linear",
        *(f"model={m},optimizer={o}" for m in ("linear", "mlp") for o in ("sgd", "adam")),
    }  # not trainer.max_epochs=3: every job of the sweep has it


def test_every_tag_is_in_the_train_val_or_weights_group(tensorboard, runs):
    """Time Series files a tag under its first path component and opens the first two groups by
    name: train and val. No epoch counter, no one-point group ahead of them."""
    tags = tensorboard("data/plugin/timeseries/tags")
    scalars = tags["scalars"]["runTagInfo"]
    histograms = tags["histograms"]["runTagInfo"]
    images = tags["images"]["tagRunSampledInfo"]
    every = [tag for run_tags in (*scalars.values(), *histograms.values()) for tag in run_tags]
    assert {tag.split("/")[0] for tag in [*every, *images]} == {"train", "val", "weights"}
    linear = {"train/loss", "train/lr", "val/loss", "val/loss/best", "weights/w", "weights/b"}
    assert set(scalars[runs["linear"]]) == linear
    mlp = {"train/loss", "train/lr", "val/loss", "val/loss/best"}  # mean MSE: val/mse = val/loss
    assert set(scalars[runs["model=mlp,optimizer=sgd"]]) == mlp
    rnn = {"train/ppl", "train/lr", "val/ppl", "val/ppl/best"}  # and grad_norm every 50 steps
    assert set(scalars[runs["rnn"]]) == rnn  # its cross-entropy is the perplexity's log


def test_an_epochs_points_share_its_end_step(tensorboard, runs):
    def steps(run, tag):
        points = tensorboard("data/plugin/scalars/scalars", run=run, tag=tag)
        return [step for _, step, _ in points]

    for run, curves in ((runs["rnn"], ("ppl",)), (runs["model=mlp,optimizer=adam"], ("loss",))):
        for curve in curves:
            epoch_ends = steps(run, f"train/{curve}")
            assert len(epoch_ends) == 3 and steps(run, f"val/{curve}") == epoch_ends
            assert steps(run, "train/lr") == epoch_ends
            assert steps(run, f"val/{curve}/best")[0] in epoch_ends
    assert steps(runs["model=mlp,optimizer=sgd"], "train/loss") == [0, 1, 2]  # 3 steps in all


def test_histograms_at_the_first_and_last_step_of_every_tensor_worth_one(tensorboard, runs):
    tags = tensorboard("data/plugin/histograms/tags")
    assert runs["linear"] not in tags  # w and b: one value each, scalars instead
    expected = {f"weights/{name}{grad}" for name in LSTM_PARAMETERS for grad in ("", "/grad")}
    assert set(tags[runs["rnn"]]) == expected
    mlp = runs["model=mlp,optimizer=sgd"]
    points = tensorboard(
        "data/plugin/histograms/histograms", run=mlp, tag="weights/layers.0.weight"
    )
    assert [step for _, step, _ in points] == [0, 2]  # a run of 3 steps


def test_text_samples_every_n_epochs_and_of_the_final_weights(tensorboard, runs):
    assert tensorboard("data/plugin/text/tags") == {runs["rnn"]: ["sample/text_summary"]}
    samples = tensorboard("data/plugin/text/text", run=runs["rnn"], tag="sample/text_summary")
    epoch_ends = [
        step
        for _, step, _ in tensorboard(
            "data/plugin/scalars/scalars", run=runs["rnn"], tag="train/ppl"
        )
    ]
    assert [sample["step"] for sample in samples] == epoch_ends[1:]  # epoch 2, and the end
    assert all("time traveller " in sample["text"] for sample in samples)


def test_custom_scalars_charts_hold_one_unit_each(tensorboard, runs):
    layout = tensorboard("data/plugin/custom_scalars/layout")
    charts = {
        category["title"]: {
            chart["title"]: chart["multiline"]["tag"] for chart in category["chart"]
        }
        for category in layout["category"]
    }
    assert charts == {  # merged over the runs: perplexity and clipping come from the char-RNN
        "train vs val": {
            "loss (squared error)": ["train/loss$", "val/loss$"],
            "perplexity": ["train/ppl$", "val/ppl$"],
        },
        "optimization": {
            "learning rate": ["train/lr"],
            "gradient norm (before clipping)": ["weights/grad_norm$"],
        },
    }

    def matched(run: str, chart: list[str]) -> set[str]:
        answer = tensorboard("data/plugin/custom_scalars/scalars", run=run, tag="|".join(chart))
        assert answer["regex_valid"]
        return set(answer["tag_to_events"])

    loss, ppl = charts["train vs val"]["loss (squared error)"], charts["train vs val"]["perplexity"]
    assert matched(runs["linear"], loss) == {"train/loss", "val/loss"}
    assert matched(runs["rnn"], loss) == set()  # no cross-entropy among the squared errors
    assert matched(runs["rnn"], ppl) == {"train/ppl", "val/ppl"}
    assert matched(runs["linear"], ppl) == set()


def test_hparams_lists_what_runs_are_compared_by(tensorboard, runs):
    experiment = tensorboard("data/plugin/hparams/experiment", body={"experimentName": ""})
    names = [info["name"] for info in experiment["hparamInfos"]]
    assert len(names) <= 25
    assert {"model", "optimizer", "optimizer.lr", "data.batch_size", "seed"} <= set(names)
    assert {"model.cell", "model.hidden_size", "trainer.precision", "model.backward"} <= set(names)
    assert not [
        name
        for name in names
        if name.split(".")[-1].endswith(("_target_", "dir", "path", "root", "url"))
    ]
    for info in experiment["hparamInfos"]:
        assert not [value for value in info.get("domainDiscrete", []) if "/" in str(value)]
    differing = sorted(info["name"] for info in experiment["hparamInfos"] if info["differs"])
    assert differing[:5] == [
        "data",
        "data.batch_size",
        "model",
        "model.clip_grad_norm",
        "optimizer",
    ]
    metrics = {metric["name"]["tag"] for metric in experiment["metricInfos"]}
    assert {"val/loss", "val/loss/best", "val/ppl", "val/ppl/best"} <= metrics


def test_hparams_trial_names_start_with_what_tells_the_runs_apart(tensorboard, runs):
    body = {
        "experimentName": "",
        "allowedStatuses": ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING"],
        "colParams": [],
        "startIndex": 0,
        "sliceSize": 100,
    }
    groups = tensorboard("data/plugin/hparams/session_groups", body=body)["sessionGroups"]
    names = sorted(group["name"] for group in groups)
    assert len(names) == 6
    sweep = [name for name in names if name[0].isdigit() and "=" in name]
    assert [name.split(" (")[0] for name in sweep] == [
        "0_model=linear,optimizer=sgd",
        "1_model=linear,optimizer=adam",
        "2_model=mlp,optimizer=sgd",
        "3_model=mlp,optimizer=adam",
    ]
