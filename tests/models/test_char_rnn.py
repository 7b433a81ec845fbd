"""The char-RNN: hand BPTT against autograd, carried state, a tiny training run, checkpoints."""

from __future__ import annotations

import json
import math
import warnings
from functools import partial

import lightning as L
import pytest
import torch
from hydra import compose, initialize_config_dir
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from handgrad.data.timemachine import TimeMachineDataModule
from handgrad.generate import generate, load_char_rnn
from handgrad.gradcheck import gradcheck
from handgrad.models.char_rnn import CharRNN
from handgrad.run.task import train
from helpers.runs import CONF, compose_config, run_script
from helpers.settings_errors import settings_error


def scratch_rnn(vocab_size: int, hidden_size: int, activation: str) -> CharRNN:
    # A larger init than the default 0.01 so every gradient (and the relu mask) is far from zero.
    model = CharRNN(
        vocab_size, cell="scratch", hidden_size=hidden_size, activation=activation, init_std=0.5
    )
    return model.double()


def random_batch(batch: int, steps: int, vocab_size: int, seed: int):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randint(0, vocab_size, (batch, steps), generator=gen)
    y = torch.randint(0, vocab_size, (batch, steps), generator=gen)
    return x, y


def autograd_and_hand(model: CharRNN, batch, state=None):
    params = dict(model.named_parameters())
    loss, _ = model.loss(batch, state)
    auto = dict(zip(params, torch.autograd.grad(loss, list(params.values())), strict=True))
    with torch.no_grad():
        hand_loss, hand, _ = model.hand_loss_and_grads(batch, state)
    return loss.detach(), auto, hand_loss, hand


@pytest.mark.parametrize("activation", ["tanh", "relu"])
@pytest.mark.parametrize(
    ("steps", "batch", "hidden", "vocab"), [(1, 1, 1, 2), (7, 3, 5, 11), (20, 4, 8, 28)]
)
@pytest.mark.parametrize("carried", [False, True])
def test_hand_bptt_equals_autograd(activation, steps, batch, hidden, vocab, carried):
    model = scratch_rnn(vocab, hidden, activation)
    data = random_batch(batch, steps, vocab, seed=steps)
    state = torch.randn(batch, hidden, dtype=torch.float64) if carried else None
    before = None if state is None else state.clone()
    loss, auto, hand_loss, hand = autograd_and_hand(model, data, state)
    torch.testing.assert_close(hand_loss, loss, rtol=1e-12, atol=0)
    assert hand.keys() == auto.keys() == {"net.W_xh", "net.W_hh", "net.b_h", "net.W_hq", "net.b_q"}
    for name in auto:
        torch.testing.assert_close(hand[name], auto[name], rtol=1e-10, atol=1e-14, msg=name)
    # Neither side changed the state it started from: a gradient check sees the same start.
    if carried:
        torch.testing.assert_close(state, before, rtol=0, atol=0)


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_carried_state_feeds_W_hh_gradient(activation):
    """H_0 W_hh is part of A_1: a nonzero carried state changes dW_hh, and it matches autograd."""
    model = scratch_rnn(6, 4, activation)
    data = random_batch(2, 3, 6, seed=0)
    _, _, _, from_zero = autograd_and_hand(model, data)
    _, auto, _, carried = autograd_and_hand(model, data, torch.ones(2, 4, dtype=torch.float64))
    assert not torch.allclose(carried["net.W_hh"], from_zero["net.W_hh"])
    torch.testing.assert_close(carried["net.W_hh"], auto["net.W_hh"], rtol=1e-10, atol=1e-14)


def test_relu_mask_is_exercised():
    """The relu case is only a test if some units are off: check the cell really clips."""
    model = scratch_rnn(11, 5, "relu")
    x, _ = random_batch(3, 7, 11, seed=7)
    hiddens = model.net.hidden_states(x.T, model.net.zero_state(3))
    assert 0 < (hiddens == 0).double().mean() < 1


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"cell": "gru", "activation": "relu"}, "model.activation=relu needs model.cell=scratch"),
        ({"cell": "transformer"}, "model.cell='transformer' is not one of scratch, rnn, gru, lstm"),
    ],
)
def test_config_mistakes_are_clear(overrides, message):
    values = {f"model.{key}": value for key, value in overrides.items()}
    assert settings_error(["model=rnn"], values).startswith(message)


@pytest.mark.parametrize("cell", ["scratch", "rnn", "gru", "lstm"])
def test_every_cell_has_a_hand_backward(cell):
    model = CharRNN(28, cell=cell, hidden_size=8, num_layers=2, dropout=0.4, backward="hand")
    with torch.no_grad():
        loss, grads, _ = model.hand_loss_and_grads(random_batch(3, 5, 28, seed=0), None)
    assert torch.isfinite(loss)
    assert grads.keys() == {name for name, _ in model.named_parameters()}


def test_the_scratch_cell_takes_the_default_recipes_fused_settings_and_ignores_them():
    model = CharRNN(28, cell="scratch", hidden_size=8, num_layers=2, dropout=0.4)
    assert sorted(name for name, _ in model.named_parameters()) == [
        "net.W_hh",
        "net.W_hq",
        "net.W_xh",
        "net.b_h",
        "net.b_q",
    ]


@pytest.mark.parametrize("cell", ["scratch", "rnn", "gru", "lstm"])
def test_every_cell_maps_tokens_to_logits_and_a_state_it_accepts(cell):
    model = CharRNN(28, cell=cell, hidden_size=8, num_layers=1 if cell == "scratch" else 2)
    tokens = torch.randint(0, 28, (5, 3))
    logits, state = model(tokens)
    assert logits.shape == (5, 3, 28)
    logits_again, _ = model(tokens[:2], state)
    assert logits_again.shape == (2, 3, 28)


# --- carried state in the real loop --------------------------------------------------------------


class StateSpy(CharRNN):
    """Records the state each training/validation batch starts from and the state it ends with."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.records = []

    def training_step(self, batch, batch_idx):
        self.at = ("train", batch_idx)
        return super().training_step(batch, batch_idx)

    def validation_step(self, batch, batch_idx):
        self.at = ("val", batch_idx)
        super().validation_step(batch, batch_idx)

    def loss(self, batch, state):
        loss, final = super().loss(batch, state)
        stage, batch_idx = self.at
        self.records.append((stage, self.current_epoch, batch_idx, state, final))
        return loss, final


@pytest.fixture
def tiny_data(time_machine):
    """Makes a 1000-token DataModule over the real text with the given sampling."""

    def make(sampling: str) -> TimeMachineDataModule:
        return TimeMachineDataModule(
            path=str(time_machine), max_tokens=1000, batch_size=4, num_steps=10, sampling=sampling
        )

    return make


def fit_spy(datamodule: TimeMachineDataModule, epochs: int = 2) -> StateSpy:
    optimizer = partial(torch.optim.SGD, lr=0.5)
    model = StateSpy(len(datamodule.vocab), cell="scratch", hidden_size=8, optimizer=optimizer)
    trainer = L.Trainer(
        max_epochs=epochs,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    trainer.fit(model, datamodule=datamodule)
    return model


def test_sequential_sampling_carries_state_and_resets_each_epoch(tiny_data):
    model = fit_spy(tiny_data("sequential"))
    for stage in ("train", "val"):
        records = [r for r in model.records if r[0] == stage]
        assert len({r[1] for r in records}) == 2 and len(records) > 4  # two epochs, many batches
        for previous, (_, _, batch_idx, start, _) in zip([None, *records], records, strict=False):
            if batch_idx == 0:  # reset at each epoch (and each validation) start
                assert start is None or not start.any()
            else:
                assert not start.requires_grad  # detached: BPTT stops at the batch boundary
                torch.testing.assert_close(start, previous[4].detach(), rtol=0, atol=0)


def test_random_sampling_starts_every_batch_from_zero(tiny_data):
    model = fit_spy(tiny_data("random"), epochs=1)
    assert model.records
    assert all(start is None or not start.any() for *_, start, _ in model.records)


def test_val_ppl_is_exp_of_the_token_weighted_mean_cross_entropy(tiny_data):
    """The last validation batch is narrower (ragged): a per-batch mean would weigh it wrongly."""
    datamodule = tiny_data("sequential")
    model = CharRNN(len(datamodule.vocab), cell="gru", hidden_size=8)
    trainer = L.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False)
    (logged,) = trainer.validate(model, datamodule=datamodule, verbose=False)
    total, tokens, state = 0.0, 0, None
    with torch.no_grad():
        widths = set()
        for x, y in datamodule.val_dataloader():
            loss, state = model.loss((x, y), state)
            total, tokens = total + float(loss) * y.numel(), tokens + y.numel()
            widths.add(y.shape[1])
    assert len(widths) == 2  # the test needs batches of different sizes
    assert logged["val/ppl"] == pytest.approx(math.exp(total / tokens), rel=1e-5)
    assert logged["val/loss"] == pytest.approx(total / tokens, rel=1e-5)


# --- a tiny run through the training task ---------------------------------------------------------

TINY_RUN = [
    "model=rnn",
    "model.cell=scratch",
    "model.backward=hand",
    "model.hidden_size=32",
    "data.max_tokens=4000",
    "data.batch_size=16",
    "data.num_steps=16",
    "data.sampling=sequential",
    "optimizer.lr=0.01",
    "trainer.max_epochs=3",
    "trainer.log_every_n_steps=1",
    "callbacks.text_sample.every_n_epochs=1",
    "callbacks.text_sample.num_chars=20",
    "device=cpu",
]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, time_machine):
    run_dir = tmp_path_factory.mktemp("rnn") / "run"
    train(compose_config([*TINY_RUN, f"data.path={time_machine}"], run_dir))
    return run_dir


def test_tiny_run_lowers_val_ppl_and_logs_ppl_and_samples(tiny_run):
    events = EventAccumulator(str(tiny_run))
    events.Reload()
    assert {"train/ppl", "val/ppl", "weights/grad_norm"} <= set(events.Tags()["scalars"])
    val_ppl = [point.value for point in events.Scalars("val/ppl")]
    assert len(val_ppl) >= 3 and val_ppl[-1] < val_ppl[0] < 28  # 28: a uniform guess's ppl
    samples = events.Tensors("sample/text_summary")
    assert len(samples) == 3
    text = samples[-1].tensor_proto.string_val[0].decode()
    assert text.startswith("time traveller ") and len(text) == len("time traveller ") + 20
    metrics = json.loads((tiny_run / "metrics.json").read_text())
    for source in ("best", "last"):
        ppl, loss = metrics[f"{source}/val/ppl"], metrics[f"{source}/val/loss"]
        assert ppl == pytest.approx(math.exp(loss), rel=1e-5)


def test_checkpoint_loads_weights_only_and_carries_the_vocabulary(tiny_run):
    checkpoint = torch.load(tiny_run / "checkpoints" / "last.ckpt", weights_only=True)
    assert checkpoint["vocab"] == [" ", "<unk>", *"abcdefghijklmnopqrstuvwxyz"]
    assert checkpoint["hyper_parameters"]["cell"] == "scratch"
    assert set(checkpoint["state_dict"]) == {
        f"net.{n}" for n in ("W_xh", "W_hh", "b_h", "W_hq", "b_q")
    }


@pytest.mark.slow  # an interpreter start (~7 s); tests/test_generate.py runs generate.py too
def test_generate_cli_continues_the_prefix_from_the_checkpoint(tiny_run):
    ckpt = tiny_run / "checkpoints" / "last.ckpt"
    result = run_script(
        "generate.py", f"ckpt={ckpt}", "prefix=The Time-Traveller!", "num_chars=30", cwd=tiny_run
    )
    assert result.returncode == 0, result.stderr[-2000:]
    # Cleaned as the training text was: lower case, each run of non-letters one space.
    model, vocab = load_char_rnn(ckpt)
    expected = generate(model, vocab, "the time traveller ", num_chars=30)
    assert result.stdout == expected + "\n"
    assert expected.startswith("the time traveller ") and len(expected) == 19 + 30


GRADCHECK_RNN = [
    "model=rnn",
    "model.cell=scratch",
    "model.hidden_size=16",
    "model.init_std=0.3",
    "data.batch_size=4",
    "data.num_steps=12",
]


@pytest.mark.parametrize("activation", ["tanh", "relu"])
@pytest.mark.corpus
def test_gradcheck_passes_for_the_scratch_cell(activation, capsys):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(
            config_name="gradcheck", overrides=[*GRADCHECK_RNN, f"model.activation={activation}"]
        )
    assert gradcheck(cfg), capsys.readouterr().out


@pytest.mark.slow  # the math runs in-process above; tests/test_gradcheck.py runs the script
def test_gradcheck_script_exits_0_for_the_scratch_cell(tmp_path):
    result = run_script("gradcheck.py", *GRADCHECK_RNN, "model.activation=relu", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr[-2000:]
    assert "gradcheck passed" in result.stdout


@pytest.mark.corpus
def test_autograd_training_is_reproducible_on_several_threads(tmp_path):
    """Two runs with the same seed on two torch threads end with the same weights to the last bit
    (the input lookup's backward sums its rows in a fixed order), so resuming can be exact."""
    overrides = [
        "model=rnn", "model.cell=scratch", "model.hidden_size=64", "data.max_tokens=6000",
        "data.sampling=sequential", "optimizer=sgd", "optimizer.lr=1", "~scheduler",
        "trainer.max_time=null", "trainer.max_epochs=2", "threads=2", "device=cpu",
        "callbacks.progress_bar.refresh_rate=0", "callbacks.early_stopping=null",
    ]  # fmt: skip
    weights = []
    for name in ("a", "b"):
        train(compose_config(overrides, tmp_path / name))
        checkpoint = torch.load(tmp_path / name / "checkpoints" / "last.ckpt", weights_only=True)
        weights.append(checkpoint["state_dict"])
    torch.set_num_threads(1)
    for name, tensor in weights[0].items():
        assert torch.equal(tensor, weights[1][name]), name


# --- the fused cells in hand mode ---------------------------------------------------------------

FUSED_GRADCHECKS = {  # the recipe (2-layer LSTM, dropout 0.4) and variants, as on the command line
    "lstm": [],
    "lstm-without-dropout": ["model.dropout=0"],  # the reference is torch's fused LSTM itself
    "gru": ["model.cell=gru"],
    "rnn-relu-3-layers": ["model.cell=rnn", "model.num_layers=3", "model.activation=relu"],
    "embedding": ["model.embedding_dim=16"],
}
SMALL_BATCH = ["data.batch_size=4", "data.num_steps=12"]


@pytest.mark.parametrize("name", FUSED_GRADCHECKS)
@pytest.mark.corpus
def test_gradcheck_passes_for_the_fused_cells(name, capsys):
    overrides = ["model=rnn", "model.hidden_size=16", *SMALL_BATCH, *FUSED_GRADCHECKS[name]]
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name="gradcheck", overrides=overrides)
    assert gradcheck(cfg), capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.parametrize("name", FUSED_GRADCHECKS)
def test_gradcheck_script_exits_0_at_the_recipes_size(name, tmp_path):
    result = run_script("gradcheck.py", "model=rnn", *FUSED_GRADCHECKS[name], cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr[-2000:]
    assert "gradcheck passed" in result.stdout


SMALL_LSTM_RUN = [
    "model=rnn", "model.hidden_size=32", "data.max_tokens=4000", "data.batch_size=16",
    "data.num_steps=16", "trainer.max_time=null", "trainer.max_epochs=4",
    "callbacks.early_stopping=null", "callbacks.text_sample=null", "device=cpu",
    "callbacks.progress_bar.refresh_rate=0",
]  # fmt: skip


def epoch_curves(run_dir) -> dict[str, list[float]]:
    """The epochs' mean cross-entropies: the logs of the perplexity curves."""
    events = EventAccumulator(str(run_dir))
    events.Reload()
    return {
        f"{stage}/loss": [math.log(e.value) for e in events.Scalars(f"{stage}/ppl")]
        for stage in ("train", "val")
    }


@pytest.mark.corpus
def test_hand_and_autograd_runs_from_one_seed_have_the_same_curves(tmp_path):
    """Without dropout the two backward modes differ by float32 rounding only."""
    curves = {}
    for mode in ("hand", "autograd"):
        overrides = [*SMALL_LSTM_RUN, "model.dropout=0", f"model.backward={mode}"]
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            train(compose_config(overrides, tmp_path / mode))
        assert not [w for w in caught if "scheduler" in str(w.message)]  # the plateau is set right
        curves[mode] = epoch_curves(tmp_path / mode)
    hand, autograd = curves["hand"], curves["autograd"]
    assert len(hand["train/loss"]) == 4 and hand["train/loss"][-1] < hand["train/loss"][0] - 0.2
    for tag in hand:
        assert hand[tag] == pytest.approx(autograd[tag], rel=1e-5), tag


@pytest.mark.corpus
def test_bf16_mixed_precision_trains_both_modes_alike_on_float32_weights(tmp_path):
    """device=cpu_bf16: the hand BPTT follows autocast (bfloat16 products, float32 weights), and
    agrees with autograd's mixed-precision step to bfloat16's precision."""
    curves = {}
    for mode, device in (("hand", "cpu_bf16"), ("autograd", "cpu_bf16"), ("hand", "cpu")):
        run_dir = tmp_path / f"{mode}-{device}"
        overrides = [*SMALL_LSTM_RUN, "model.dropout=0", f"model.backward={mode}"]
        train(compose_config([*overrides, f"device={device}"], run_dir))
        curves[mode, device] = epoch_curves(run_dir)
        weights = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
        assert {t.dtype for t in weights["state_dict"].values()} == {torch.float32}
    hand, autograd = curves["hand", "cpu_bf16"], curves["autograd", "cpu_bf16"]
    assert hand["train/loss"][-1] < hand["train/loss"][0] - 0.2
    for tag in hand:
        assert hand[tag] == pytest.approx(autograd[tag], rel=2e-3), tag
    in_float32 = curves["hand", "cpu"]["train/loss"]
    assert hand["train/loss"] != in_float32  # the products did run in bfloat16
    assert hand["train/loss"] == pytest.approx(in_float32, rel=2e-2)


@pytest.mark.corpus
def test_gradcheck_callback_in_hand_mode_with_dropout(tmp_path):
    """The callback checks the LSTM's hand gradients (dropout masks included) during training."""
    overrides = [*SMALL_LSTM_RUN, "model.backward=hand", "trainer.max_epochs=1"]
    train(compose_config([*overrides, "callbacks.gradcheck.every_n_steps=5"], tmp_path))
    events = EventAccumulator(str(tmp_path))
    events.Reload()
    points = events.Scalars("gradcheck/max_rel_err")
    assert [p.step for p in points] == [0, 5, 10]
    assert all(0 <= p.value < 1e-5 for p in points)  # float32 round-off


@pytest.mark.parametrize("model", ["rnn", "gpt"])
@pytest.mark.corpus
def test_a_step_budget_inside_the_first_epoch_ends_the_run_cleanly(model, tmp_path):
    """Early stopping decides after validations only: a `trainer.max_steps` that ends an epoch
    before its validation once made it raise (val/ppl not available) instead of ending the run."""
    overrides = [f"model={model}", "data.max_tokens=4000", "trainer.max_steps=2", "device=cpu"]
    train(compose_config([*overrides, "callbacks.progress_bar.refresh_rate=0"], tmp_path))
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["status"] == "ok" and metrics["checkpoints"]["last"]["step"] == 2
