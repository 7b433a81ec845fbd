"""model.compile: compiled training matches eager training, the compile seconds are their own
metric, checkpoints are the same in both, and a compiler failure falls back to eager.

Compiling even a tiny model takes seconds (the char-RNN's ~30 s with an empty Inductor cache, as on
a fresh CI machine; the on-disk cache makes later runs with the same shapes cheaper), so every
test that compiles a run is marked slow; the slow tiny char-RNN runs in hand mode, eager and
compiled, are shared by a module fixture. The default suite compiles nothing: it runs the
fallback (Dynamo traces, the Inductor backend fails, training goes on eagerly) and the check of
the setting's value.
"""

from __future__ import annotations

import json
import logging

import pytest
import torch
from hydra import compose, initialize_config_dir
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch._dynamo.utils import counters
from torch._inductor.exc import InvalidCxxCompiler

from handgrad.generate import main as generate_main
from handgrad.gradcheck import gradcheck
from handgrad.run.checkpoint_reading import load_checkpoint
from handgrad.run.console import closing_block
from handgrad.run.task import train
from helpers.runs import CONF, compose_config
from helpers.settings_errors import settings_error

TINY_RNN = [
    "model=rnn", "model.cell=scratch", "model.hidden_size=16", "model.dropout=0",
    "model.weight_drop=0", "model.embedding_dropout=0", "model.embedding_dim=null",
    "model.dropout_kind=standard",
    "data.max_tokens=1000", "data.batch_size=8",
    "data.num_steps=8", "data.sampling=sequential", "trainer.max_time=null",
    "trainer.max_epochs=2", "trainer.log_every_n_steps=1", "callbacks.early_stopping=null",
    "callbacks.text_sample=null", "callbacks.progress_bar.refresh_rate=0", "device=cpu",
]  # fmt: skip
TINY_REGRESSION = [
    "data.n_samples=40", "data.batch_size=8", "trainer.max_epochs=2",
    "trainer.log_every_n_steps=1", "callbacks.progress_bar.refresh_rate=0", "device=cpu",
]  # fmt: skip


def graphs_compiled() -> int:
    """How many graphs TorchDynamo has compiled in this process (each compile and recompile)."""
    return counters["stats"]["unique_graphs"]


def curves(run_dir) -> dict[str, list[float]]:
    """The run's train and val curves: loss (regression) or perplexity (char-RNN)."""
    events = EventAccumulator(str(run_dir))
    events.Reload()
    tags = [tag for tag in events.Tags()["scalars"] if tag.split("/")[-1] in ("loss", "ppl")]
    return {tag: [e.value for e in events.Scalars(tag)] for tag in tags}


def assert_same_losses(eager_dir, compiled_dir) -> None:
    """Every logged train and val loss (or perplexity) agrees to float32 round-off."""
    eager, compiled = curves(eager_dir), curves(compiled_dir)
    assert len(eager) == 2 and all(len(points) >= 2 for points in eager.values())
    for tag in eager:
        assert compiled[tag] == pytest.approx(eager[tag], rel=1e-5), tag


def metrics(run_dir) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


@pytest.fixture(scope="module")
def rnn_runs(tmp_path_factory):
    """The tiny scratch char-RNN in hand mode, eager and compiled (with the graphs it compiled)."""
    root = tmp_path_factory.mktemp("compile")
    train(compose_config([*TINY_RNN, "model.backward=hand"], root / "eager"))
    before = graphs_compiled()
    train(compose_config([*TINY_RNN, "model.backward=hand", "model.compile=true"], root / "on"))
    return {"eager": root / "eager", "compiled": root / "on", "graphs": graphs_compiled() - before}


@pytest.mark.slow  # the module's compile: ~30 s with an empty cache (a fresh CI machine)
def test_compiled_hand_bptt_trains_as_eager_does_in_one_graph(rnn_runs):
    assert_same_losses(rnn_runs["eager"], rnn_runs["compiled"])
    # An epoch's first batch starts from zeros, the others from the carried state: one graph
    # serves both, for 2 epochs of 13 batches (no recompile per batch or per epoch).
    assert rnn_runs["graphs"] == 1


@pytest.mark.slow
def test_compile_seconds_are_their_own_metric(rnn_runs):
    compiled, eager = metrics(rnn_runs["compiled"]), metrics(rnn_runs["eager"])
    assert compiled["last/time/compile_s"] > 0
    assert "last/time/compile_s" not in eager
    events = EventAccumulator(str(rnn_runs["compiled"]))
    events.Reload()
    points = events.Scalars("time/compile_s")
    assert len(points) == 2 and points[-1].value == pytest.approx(compiled["last/time/compile_s"])
    assert compiled["last/perf/tokens_per_s"] > 0
    status = closing_block(compiled, rnn_runs["compiled"], tensorboard=True).splitlines()[0]
    assert status.endswith(f", of which compiling {compiled['last/time/compile_s']:.1f} s)")
    assert "compiling" not in closing_block(eager, rnn_runs["eager"], tensorboard=True)


@pytest.mark.slow
def test_checkpoints_are_the_same_and_resume_across_compile_settings(rnn_runs, tmp_path):
    """No `_orig_mod.` keys: a compiled run's checkpoint resumes uncompiled and the other way
    round, and generate.py reads it."""
    keys = {}
    for name in ("eager", "compiled"):
        path = rnn_runs[name] / "checkpoints" / "last.ckpt"
        keys[name] = list(load_checkpoint(path, ("state_dict",))["state_dict"])
    assert keys["compiled"] == keys["eager"]
    assert all("_orig_mod" not in key for key in keys["compiled"])
    steps = metrics(rnn_runs["eager"])["checkpoints"]["last"]["step"]  # 2 epochs
    for source, compile_now in (("compiled", "false"), ("eager", "true")):
        ckpt = rnn_runs[source] / "checkpoints" / "last.ckpt"
        overrides = [*TINY_RNN, "model.backward=hand", f"model.compile={compile_now}"]
        overrides += [f"ckpt_path={ckpt}", "trainer.max_epochs=3"]
        train(compose_config(overrides, tmp_path / source))
        assert metrics(tmp_path / source)["checkpoints"]["last"]["step"] == steps * 3 // 2
    ckpt = rnn_runs["compiled"] / "checkpoints" / "last.ckpt"
    text = generate_main([f"ckpt={ckpt}", "prefix=time ", "num_chars=10"])
    assert text.startswith("time ") and len(text) == len("time ") + 10


def test_a_compiler_failure_falls_back_to_eager_with_one_warning(monkeypatch, caplog, tmp_path):
    """Inductor without a working C++ compiler: one warning line, and training ends as eager."""

    def no_compiler(*args, **kwargs):
        raise InvalidCxxCompiler()

    monkeypatch.setattr("torch._inductor.compile_fx.compile_fx", no_compiler)
    overrides = [*TINY_REGRESSION, "model.backward=hand"]
    train(compose_config(overrides, tmp_path / "eager"))
    with caplog.at_level(logging.WARNING):
        train(compose_config([*overrides, "model.compile=true"], tmp_path / "on"))
    cxx = torch._inductor.config.cpp.cxx
    warned = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warned == [
        "model.compile: compiling LinearRegression.hand_loss_and_grads failed (InvalidCxxCompiler: "
        f"No working C++ compiler found in torch._inductor.config.cpp.cxx: {cxx}); it runs eagerly"
    ]
    assert metrics(tmp_path / "on")["status"] == "ok"
    assert_same_losses(tmp_path / "eager", tmp_path / "on")


@pytest.mark.parametrize("model", ["rnn", "linear"])
def test_compile_must_be_a_bool(model):
    message = settings_error([f"model={model}"], {"model.compile": "maybe"})
    assert message == "model.compile='maybe' must be true or false"


# overrides, and the most graphs the compiled run compiles (fewer when this process compiled the
# same code before): one for the training step, and one more for a last, shorter batch (32
# training rows in batches of 5); never one per batch or epoch.
SLOW_CASES = {
    "linear-autograd": (["model=linear", *TINY_REGRESSION, "data.batch_size=5"], 2),
    "mlp-hand": (["model=mlp", "model.hidden=[8]", "model.backward=hand", *TINY_REGRESSION], 1),
    "mlp-autograd": (["model=mlp", "model.hidden=[8]", *TINY_REGRESSION], 1),
    "lstm-hand": ([*TINY_RNN, "model.cell=lstm", "model.num_layers=2", "model.backward=hand"], 1),
    # TorchDynamo does not trace torch's fused LSTM: the compiled loss is split around it
    "lstm-autograd": ([*TINY_RNN, "model.cell=lstm", "model.num_layers=2"], 3),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", SLOW_CASES)
def test_compiled_training_matches_eager(case, tmp_path):
    overrides, graphs = SLOW_CASES[case]
    train(compose_config(overrides, tmp_path / "eager"))
    before = graphs_compiled()
    train(compose_config([*overrides, "model.compile=true"], tmp_path / "on"))
    assert_same_losses(tmp_path / "eager", tmp_path / "on")
    assert metrics(tmp_path / "on")["last/time/compile_s"] > 0
    assert 0 < graphs_compiled() - before <= graphs  # not one per batch or epoch


@pytest.mark.slow
def test_gradcheck_checks_the_compiled_hand_bptt_in_float64(capsys):
    """With model.compile=true the gradient check runs what training would: in hand mode the
    compiled hand BPTT (compiled again for float64), against eager autograd."""
    overrides = [*TINY_RNN, "model.init_std=0.3", "model.backward=hand", "model.compile=true"]
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name="gradcheck", overrides=overrides)
    before = graphs_compiled()
    assert gradcheck(cfg), capsys.readouterr().out
    assert graphs_compiled() > before
