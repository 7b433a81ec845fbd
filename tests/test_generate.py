"""Text generation: greedy / temperature / top-k choice, prefix clean-up, checkpoint loading."""

from __future__ import annotations

import string

import pytest
import torch

from handgrad.data.vocab import Vocab
from handgrad.errors import CheckpointError, ConfigError
from handgrad.generate import generate, load_char_rnn, main, next_token, parse_args
from handgrad.models.char_rnn import CharRNN

VOCAB = Vocab.from_list([" ", "<unk>", *string.ascii_lowercase])


@pytest.fixture
def model():
    torch.manual_seed(0)
    return CharRNN(len(VOCAB), cell="gru", hidden_size=8)


def save_checkpoint(path, model, **extra):
    checkpoint = {"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams)}
    torch.save({**checkpoint, "vocab": VOCAB.to_list(), **extra}, path)
    return path


def test_greedy_is_argmax_and_sampling_keeps_to_the_top_k():
    logits = torch.tensor([0.0, 3.0, 1.0, 2.5, -1.0])
    gen = torch.Generator().manual_seed(0)
    assert next_token(logits, 0.0, None, gen) == 1
    draws = {next_token(logits, 1.0, 2, gen) for _ in range(200)}
    assert draws == {1, 3}
    all_draws = {next_token(logits, 5.0, None, gen) for _ in range(400)}
    assert all_draws == {0, 1, 2, 3, 4}


def test_generate_is_reproducible_and_restores_training_mode(model):
    greedy = generate(model, VOCAB, "time traveller ", num_chars=40)
    assert greedy == generate(model, VOCAB, "time traveller ", num_chars=40)
    sample = generate(model, VOCAB, "time ", num_chars=40, temperature=1.0, seed=3)
    assert sample == generate(model, VOCAB, "time ", num_chars=40, temperature=1.0, seed=3)
    assert len(sample.replace("<unk>", "?")) == len("time ") + 40  # one token per character
    assert model.training


def test_prefix_is_cleaned_like_the_training_text(model):
    text = generate(model, VOCAB, "The Time-Traveller's 1st Über-trip!", num_chars=0)
    assert text == "the time traveller s st ber trip "
    with pytest.raises(ConfigError, match="has no letters or spaces"):
        generate(model, VOCAB, "", num_chars=5)


def test_checkpoint_round_trip(model, tmp_path):
    path = save_checkpoint(tmp_path / "rnn.ckpt", model)
    loaded, vocab = load_char_rnn(path)
    assert vocab.idx_to_token == VOCAB.idx_to_token
    assert generate(loaded, vocab, "time ", 30) == generate(model, VOCAB, "time ", 30)
    assert main([f"ckpt={path}", "prefix=Time ", "num_chars=30"]) == generate(
        model, VOCAB, "time ", 30
    )


def test_bad_checkpoints_are_clear_errors_naming_the_file(model, tmp_path):
    with pytest.raises(
        CheckpointError, match=f"checkpoint {tmp_path / 'nope.ckpt'} does not exist"
    ):
        load_char_rnn(tmp_path / "nope.ckpt")
    garbled = tmp_path / "garbled.ckpt"
    garbled.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match=f"checkpoint {garbled} cannot be read"):
        load_char_rnn(garbled)
    linear = tmp_path / "linear.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(1, 1)}, "hyper_parameters": {}}, linear)
    with pytest.raises(CheckpointError, match=f"checkpoint {linear} is not from a char-RNN run"):
        load_char_rnn(linear)
    misfit = save_checkpoint(tmp_path / "misfit.ckpt", model, hyper_parameters={"vocab_size": 28})
    with pytest.raises(CheckpointError, match=f"checkpoint {misfit} does not fit a char-RNN"):
        load_char_rnn(misfit)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["prefix=abc"], "ckpt=<path to a .ckpt file> is required"),
        (["ckpt=x", "chars=5"], "unknown argument 'chars=5': use key=value with keys ckpt, "),
        (["ckpt=x", "num_chars=many"], "num_chars='many' must be an integer"),
        (["ckpt=x", "temperature=-1"], "temperature=-1.0 must be >= 0"),
        (["ckpt=x", "top_k=0"], "top_k=0 must be >= 1"),
    ],
)
def test_argument_mistakes_are_config_errors(argv, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        parse_args(argv)


def test_arguments_have_types_and_defaults():
    args = parse_args(["ckpt=a.ckpt", "temperature=0.5", "top_k=3", "prefix=x = y"])
    assert args == {
        "ckpt": "a.ckpt",
        "prefix": "x = y",
        "num_chars": 100,
        "temperature": 0.5,
        "top_k": 3,
        "seed": 0,
    }
