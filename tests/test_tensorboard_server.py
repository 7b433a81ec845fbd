"""A real `tensorboard` server over the dir of a real tiny sweep (a linear and a char-RNN job), read
through its HTTP API as the browser reads it: runs, scalar and histogram tags, the Custom Scalars
layout and the curves its charts match, text samples, the HParams experiment."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from urllib.parse import urlencode
from urllib.request import Request, urlopen

import pytest

from helpers.runs import run_script

pytestmark = pytest.mark.slow  # a sweep of two jobs and a server: ~15 s on an idle 2-core CPU

SWEEP = [
    "-m",
    "model=linear,rnn",
    "threads=1",
    "data.batch_size=4",
    "trainer.max_epochs=5",  # the char-RNN's text sample comes every 5 epochs
    "+trainer.limit_train_batches=2",
    "+trainer.limit_val_batches=1",
    "callbacks.histograms.every_n_steps=3",
    "callbacks.progress_bar.refresh_rate=0",
]
LSTM_PARAMETERS = [
    *(f"net.rnn.{kind}_l{layer}" for layer in (0, 1) for kind in ("weight_ih", "weight_hh")),
    *(f"net.rnn.{kind}_l{layer}" for layer in (0, 1) for kind in ("bias_ih", "bias_hh")),
    "net.head.weight",
    "net.head.bias",
]
START_TIMEOUT_S = 60


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory, time_machine):
    root = tmp_path_factory.mktemp("tensorboard")
    sweep = root / "sweep"
    env = {"HANDGRAD_DATA": str(time_machine.parent)}
    result = run_script("train.py", *SWEEP, f"hydra.sweep.dir={sweep}", cwd=root, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    return sweep


def free_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def tensorboard(sweep_dir, tmp_path_factory):
    """`get(route, body=None, **query)`: the JSON a tensorboard server on 127.0.0.1 answers (a
    POST of `body` as JSON when given).

    The server loads the whole dir once before it serves (`--reload_task blocking`), so the first
    answer already holds every event; it is stopped after the module's tests.
    """
    log = tmp_path_factory.mktemp("server") / "tensorboard.log"
    port = free_loopback_port()
    command = [
        *(sys.executable, "-m", "tensorboard.main", "--logdir", str(sweep_dir)),
        *("--host", "127.0.0.1", "--port", str(port)),
        *("--load_fast", "false", "--reload_task", "blocking", "--reload_interval", "0"),
    ]
    with log.open("w") as output:
        server = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"

    def get(route: str, body: dict | None = None, **query):
        url = f"{base}/{route}" + (f"?{urlencode(query)}" if query else "")
        data = None if body is None else json.dumps(body).encode()
        request = Request(url, data, {"Content-Type": "application/json"})
        with urlopen(request, timeout=10) as response:
            return json.load(response)

    try:
        wait_until_serving(server, get, log)
        yield get
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def wait_until_serving(server: subprocess.Popen, get, log) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"tensorboard exited with {server.returncode}:\n{log.read_text()[-2000:]}")
        try:
            get("data/runs")
            return
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"tensorboard did not answer in {START_TIMEOUT_S} s:\n{log.read_text()[-2000:]}")


@pytest.fixture(scope="module")
def runs(tensorboard) -> dict[str, str]:
    """{model: TensorBoard's run name} for the sweep's two jobs."""
    names = tensorboard("data/runs")
    assert len(names) == 2
    return {model: next(n for n in names if f"model={model}," in n) for model in ("linear", "rnn")}


def test_scalar_tags_of_every_run(tensorboard, runs):
    tags = tensorboard("data/plugin/scalars/tags")
    common = {"train/loss", "val/loss", "optim/lr"}
    assert common | {"val/mse", "param/w", "param/b"} <= set(tags[runs["linear"]])
    assert common | {"train/ppl", "val/ppl", "perf/tokens_per_s"} <= set(tags[runs["rnn"]])


def test_weight_and_gradient_histograms_of_every_parameter(tensorboard, runs):
    tags = tensorboard("data/plugin/histograms/tags")
    for run, parameters in ((runs["linear"], ["w", "b"]), (runs["rnn"], LSTM_PARAMETERS)):
        expected = {f"{kind}/{name}" for kind in ("weights", "grads") for name in parameters}
        assert set(tags[run]) == expected
    points = tensorboard("data/plugin/histograms/histograms", run=runs["linear"], tag="grads/w")
    assert [step for _, step, _ in points] == [0, 3, 6, 9]  # 10 steps, every third


def test_custom_scalars_layout_and_the_curves_its_charts_match(tensorboard, runs):
    layout = tensorboard("data/plugin/custom_scalars/layout")
    charts = {
        category["title"]: {
            chart["title"]: chart["multiline"]["tag"] for chart in category["chart"]
        }
        for category in layout["category"]
    }
    assert charts == {  # merged over the runs: perplexity and clipping come from the char-RNN
        "train vs val": {
            "loss": ["train/loss$", "val/loss$"],
            "perplexity": ["train/ppl$", "val/ppl$"],
        },
        "optimization": {
            "learning rate": ["optim/lr"],
            "gradient norm (before clipping)": ["grad/norm$"],
        },
    }

    def matched(run: str, chart: list[str]) -> set[str]:
        found = set()
        for regex in chart:
            answer = tensorboard("data/plugin/custom_scalars/scalars", run=run, tag=regex)
            assert answer["regex_valid"]
            found |= set(answer["tag_to_events"])
        return found

    loss, ppl = charts["train vs val"]["loss"], charts["train vs val"]["perplexity"]
    assert matched(runs["linear"], loss) == {"train/loss", "val/loss"}
    assert matched(runs["rnn"], ppl) == {"train/ppl", "val/ppl"}
    assert matched(runs["rnn"], charts["optimization"]["learning rate"]) == {"optim/lr"}


def test_text_samples_of_the_char_rnn(tensorboard, runs):
    assert tensorboard("data/plugin/text/tags") == {runs["rnn"]: ["sample/text_summary"]}
    (sample,) = tensorboard("data/plugin/text/text", run=runs["rnn"], tag="sample/text_summary")
    assert sample["step"] == 10 and "time traveller " in sample["text"]


def test_hparams_experiment_lists_every_metric_of_every_run(tensorboard):
    """The runs' validation metrics differ by model (val/mse, val/ppl): HParams lists them all."""
    scalar_tags = tensorboard("data/plugin/scalars/tags")
    validation = {tag for tags in scalar_tags.values() for tag in tags if tag.startswith("val/")}
    assert validation >= {"val/loss", "val/mse", "val/ppl"}
    experiment = tensorboard("data/plugin/hparams/experiment", body={"experimentName": ""})
    assert validation <= {metric["name"]["tag"] for metric in experiment["metricInfos"]}
